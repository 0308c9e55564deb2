"""`nas-recon demo`: the whole pipeline on the offline demo data, resumable."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nas_recon.cli.common import add_device, add_verbose, console, fraction, nonneg_int, pos_int, seed_int
from nas_recon.cli.report import summary_table
from nas_recon.cli.search import RichSearchProgress, RichSelectionProgress
from nas_recon.cli.train import RichRetrainProgress, progress_bar
from nas_recon.defaults import SUPERVISIONS
from nas_recon.pipelines.demo import BASELINES, BUDGETS, DEMO_SELECT, DEMO_SPACE, DEMO_TARGET
from nas_recon.search.config import SELECTIONS


def register(sub: argparse._SubParsersAction) -> None:
    """Add `demo`."""
    p = sub.add_parser("demo", help="the whole job on the offline demo data: search, retrain, evaluate, report")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder (default demo-out)")
    p.add_argument("--budget", default="quick", choices=list(BUDGETS),
                   help="quick (<= 15 min on 2 CPU cores), standard (<= 60 min on 2 CPU cores: 3x the steps), "
                        "long (the paper's 80 epochs on 64 x 64 crops: 10x the steps, hours on 2 CPU cores), "
                        "full (paper recipe, GPU), tiny (CI smoke run)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--space", default=DEMO_SPACE,
                   help=f"search space, a shipped name (macro_a, paper_a, paper_b, mixed_a) or a TOML path (default "
                        f"{DEMO_SPACE}; the paper's: --space paper_a --select alpha)")
    p.add_argument("--select", default=DEMO_SELECT, choices=list(SELECTIONS),
                   help=f"halving: DARTS proposes, successive halving over short retrainings decides, everything "
                        f"compared at --flops-target; alpha: the paper's rule (default {DEMO_SELECT})")
    p.add_argument("--flops-target", default=DEMO_TARGET,
                   help=f"--select halving: G (conv MACs at 320 x 320) or like:MODEL (default {DEMO_TARGET})")
    p.add_argument("--flops-band", type=fraction, default=0.05, help="--select halving: the band (default 0.05)")
    p.add_argument("--source", default="mni152", help="demo data source: mni152 or PATH.nii[.gz]")
    p.add_argument("--cell-bias", action="store_true",
                   help="outside SPEC's contract: searched and random cells get a bias on every conv "
                        "(search --cell-bias); the baselines are unchanged")
    p.add_argument("--coils", type=nonneg_int, default=0,
                   help="0: single-coil (default); N >= 2: the multi-coil demo (N simulated coils, ESPIRiT maps, "
                        "SENSE data consistency, E2E-VarNet among the baselines)")
    p.add_argument("--baselines", nargs="+", metavar="MODEL",
                   help="the handcrafted networks retrained beside the searched one (registered names, e.g. dccnn-3 "
                        f"unet attention-unet-small squeeze-unet-small dircn-small; default {' '.join(BASELINES)}; "
                        "--select halving keeps those at or below the FLOPs target)")
    p.add_argument("--supervision", default="full", choices=list(SUPERVISIONS),
                   help="ssdu: train/ and val/ undersampled at 4x without references; the search, its selection and "
                        "the retrainings self-supervised (SSDU), beside their supervised twins, in OUT/ssdu")
    add_device(p)
    add_verbose(p)
    p.set_defaults(func=run)
    register_ablate(sub)


class RichDemoProgress:
    """Stage lines and per-stage progress bars on one rich Progress."""

    def __init__(self, bar) -> None:
        self.bar = bar
        self.t0 = time.time()

    def stage(self, text: str) -> None:
        self.bar.console.print(f"[bold cyan]{time.time() - self.t0:6.0f}s[/] {text}")

    def search_progress(self) -> RichSearchProgress:
        return RichSearchProgress(self.bar)

    def selection_progress(self) -> RichSelectionProgress:
        return RichSelectionProgress(self.bar)

    def retrain_progress(self, label: str) -> RichRetrainProgress:
        p = RichRetrainProgress(self.bar)
        orig = p.start

        def start(epochs: int, steps: int, start_epoch: int) -> None:
            orig(epochs, steps, start_epoch)
            self.bar.update(p.task, description=label)

        p.start = start  # type: ignore[method-assign]
        return p


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the summary."""
    from nas_recon.pipelines.demo import run_demo

    t0 = time.time()
    with progress_bar() as bar:
        report = run_demo(args.out, args.budget, args.device, args.seed, RichDemoProgress(bar), args.source,
                          args.cell_bias, args.space, args.coils, args.select, args.flops_target, args.flops_band,
                          tuple(args.baselines) if args.baselines else None, args.supervision)
    console.print(summary_table(report))
    where = args.out / ("ssdu" if args.supervision == "ssdu" else "") / "report" / "report.md"
    console.print(f"done in {time.time() - t0:.0f} s; report: {where} "
                  "(rerun the same command to continue an interrupted demo)")
    return 0


def register_ablate(sub: argparse._SubParsersAction) -> None:
    """Add `ablate`."""
    p = sub.add_parser("ablate", help="search + retrain per space and node count, one report table (Table II)")
    p.add_argument("--out", type=Path, required=True, help="output folder (rerun the same command to continue)")
    p.add_argument("--data", type=Path, default=None,
                   help="data root with train/ val/ test/ (default: build the offline demo data in OUT/data)")
    p.add_argument("--spaces", nargs="+", default=["paper_a", "paper_b"], help="spaces (names or TOML paths)")
    p.add_argument("--nodes", nargs="+", type=pos_int, default=[2, 3, 4], help="node counts per cell")
    p.add_argument("--budget", default="quick", choices=list(BUDGETS),
                   help="search and retraining budget, as in `demo` (quick: ~2.5 min per setting on 2 CPU cores)")
    p.add_argument("--seed", type=seed_int, default=0)
    add_device(p)
    add_verbose(p)
    p.set_defaults(func=run_ablate_cmd)


def run_ablate_cmd(args: argparse.Namespace) -> int:
    """Run the ablation and print the summary."""
    from nas_recon.pipelines.ablate import run_ablate

    t0 = time.time()
    with progress_bar() as bar:
        report = run_ablate(args.out, args.data, tuple(args.spaces), tuple(args.nodes), args.budget, args.device,
                            args.seed, RichDemoProgress(bar))
    console.print(summary_table(report))
    console.print(f"done in {time.time() - t0:.0f} s; report: {args.out / 'report' / 'report.md'}")
    return 0
