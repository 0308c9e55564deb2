"""`nas-recon search`: bilevel DARTS search, writes RUN/genotype.json and friends."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nas_recon.cli.common import (
    add_device,
    add_verbose,
    console,
    fraction,
    nonneg_float,
    nonneg_int,
    pos_float,
    pos_int,
    seed_int,
    size_int,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `search`."""
    p = sub.add_parser("search", help="DARTS search of a reconstruction cell (writes a genotype JSON)")
    p.add_argument("--data", required=True, type=Path, help="data folder (its train/ subfolder is used if present)")
    p.add_argument("--space", default="paper_a", help="shipped space name (paper_a, paper_b) or a TOML path")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--epochs", type=pos_int, default=50, help="maximum epochs (default 50)")
    p.add_argument("--patience", type=pos_int, default=10, help="stop when the genotype is unchanged this many epochs")
    p.add_argument("--crop", type=nonneg_int, default=64, help="random training crop (default 64; 0 = full image)")
    p.add_argument("--size", type=size_int, default=320, help="pairing crop of the images (default 320)")
    p.add_argument("--batch-size", type=pos_int, default=4)
    p.add_argument("--max-slices", type=nonneg_int, default=None, help="at most this many slices in each split")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--strategy", default="darts", choices=["darts", "darts2", "gdas", "pcdarts", "random"],
                   help="darts: first-order DARTS (default); darts2: second-order (unrolled) DARTS; gdas: "
                        "Gumbel-softmax sampling of one op per edge (straight-through), temperature --tau-max -> "
                        "--tau-min; pcdarts: partial channels (1/4) and edge normalisation; random: random one-shot")
    p.add_argument("--tau-max", type=pos_float, default=10.0, help="gdas: temperature at the first epoch")
    p.add_argument("--tau-min", type=pos_float, default=0.1, help="gdas: temperature at the last epoch")
    p.add_argument("--lr", type=pos_float, default=1e-3, help="weight learning rate (Adam)")
    p.add_argument("--arch-lr", type=pos_float, default=3e-4, help="architecture learning rate (Adam, betas 0.5/0.999)")
    p.add_argument("--arch-weight-decay", type=nonneg_float, default=1e-3)
    p.add_argument("--grad-clip", type=nonneg_float, default=5.0, help="weight-gradient clip norm (0 = off)")
    p.add_argument("--split", type=fraction, default=0.5, help="fraction of training volumes in train_w")
    p.add_argument("--candidates", type=pos_int, default=16, help="random strategy: cells scored at the end")
    p.add_argument("--repeats", type=pos_int, default=1,
                   help="draws of each slice per epoch, each with its own crop and mask (more steps per epoch)")
    p.add_argument("--decide-margin", type=nonneg_float, default=0.02,
                   help="early stop needs every margin the cell depends on >= this softmax weight (and >= 2x the "
                        "last epoch's drift)")
    p.add_argument("--max-skips", type=nonneg_int, default=None,
                   help="P-DARTS guard: at most this many skip_connect ops in the derived cell (the strongest kept)")
    p.add_argument("--cost", choices=["flops", "latency"], default=None,
                   help="cost-aware search: penalise each edge's expected op cost, from conv MACs (thop) or from "
                        "per-op latency measured on the search device (cached in --out as op_costs.json)")
    p.add_argument("--cost-weight", type=nonneg_float, default=0.0,
                   help="weight L of the cost penalty (the expected cell cost relative to its dearest form, in "
                        "[0, 1]) added to the architecture loss; sweep it for a quality-cost front")
    p.add_argument("--cell-bias", action="store_true",
                   help="outside SPEC's contract (bias-free cells): give every conv of the supernet a zero-initialised "
                        "bias; the genotype records it and the retrained network has them too (see BENCHMARKS.md)")
    p.add_argument("--select", choices=["alpha", "perturb"], default="alpha",
                   help="derivation: alpha = the paper's rule on softmax weights (default); perturb = DARTS-PT: each "
                        "op ranked by how much the trained supernet's train_alpha loss rises without it")
    p.add_argument("--precision", choices=["32", "bf16-mixed"], default="32",
                   help="32 (default) or bf16-mixed: the supernet under autocast, FFTs, fusion and losses in float32")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_device(p)
    add_verbose(p)
    p.set_defaults(func=run)


class RichSearchProgress:
    """Rich progress bar for the search."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task = None
        self.total_epochs = 0
        self.steps = 0

    def start(self, total_epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        self.total_epochs, self.steps = total_epochs, steps_per_epoch
        self.task = self.bar.add_task("search", total=total_epochs * steps_per_epoch, info="")

    def step(self, epoch: int, step: int, w_loss: float, a_loss: float | None) -> None:
        info = f"epoch {epoch + 1}/{self.total_epochs}  w-loss {w_loss:.4f}"
        if a_loss is not None:
            info += f"  alpha-loss {a_loss:.4f}"
        self.bar.update(self.task, completed=epoch * self.steps + step, info=info)

    def epoch_end(self, row: dict[str, Any]) -> None:
        if row.get("genotype"):
            self.bar.console.print(
                f"epoch {row['epoch']}: {row['genotype']}  (unchanged {row['unchanged_epochs']}, "
                f"margin {row['chosen_margin']:.3f}, {'decided' if row['decided'] else 'undecided'}, "
                f"{row['skips']} skip)", soft_wrap=True
            )


def run(args: argparse.Namespace) -> int:
    """Run the search with a progress bar and print a summary."""
    from nas_recon.search.run import SearchConfig, run_search

    cfg = SearchConfig(
        data=str(args.data), out=str(args.out), space=args.space, epochs=args.epochs, patience=args.patience,
        crop=args.crop or None, size=args.size, batch_size=args.batch_size, max_slices=args.max_slices,
        seed=args.seed, device=args.device, strategy=args.strategy, split=args.split, lr=args.lr,
        arch_lr=args.arch_lr, arch_weight_decay=args.arch_weight_decay, grad_clip=args.grad_clip or None,
        candidates=args.candidates, repeats=args.repeats, decide_margin=args.decide_margin,
        max_skips=args.max_skips, tau_max=args.tau_max, tau_min=args.tau_min, cost=args.cost,
        cost_weight=args.cost_weight, cell_bias=args.cell_bias, select=args.select,
        precision=args.precision,
    )
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    if args.resume and not (Path(args.out) / "checkpoints" / "last.ckpt").is_file():
        console.print(f"--resume: nothing to resume in {args.out} (no checkpoints/last.ckpt); starting a fresh run")
    with Progress(*columns, console=console) as bar:
        result = run_search(cfg, resume=args.resume, progress=RichSearchProgress(bar))
    table = Table(title=f"searched cell ({result.genotype.space})")
    for col in ("node", "input 1", "op 1", "input 2", "op 2"):
        table.add_column(col)
    names = ["C_{l-2}", "C_{l-1}"] + [f"node {i}" for i in range(result.genotype.nodes)]
    for i, n in enumerate(result.genotype.cell):
        table.add_row(str(i), names[n.inputs[0]], n.ops[0], names[n.inputs[1]], n.ops[1])
    console.print(table)
    how = "stopped early (genotype stable and decided)" if result.stopped_early else "reached --epochs"
    console.print(f"{result.epochs_run} epochs, {how}; wrote {result.run_dir / 'genotype.json'}")
    return 0
