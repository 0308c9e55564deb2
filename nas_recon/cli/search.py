"""`nas-recon search`: bilevel DARTS search, writes RUN/genotype.json and friends."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nas_recon.cli.common import (
    add_device,
    add_devices,
    add_options,
    add_verbose,
    check_ranks,
    config_from_args,
    console,
    nonneg_int,
    pos_int,
    relaunch,
)
from nas_recon.cli.train import progress_bar
from nas_recon.search.config import RECORD, SearchConfig
from nas_recon.search.selections import selection as selection_of


def register(sub: argparse._SubParsersAction) -> None:
    """Add `search`."""
    p = sub.add_parser("search", help="DARTS search of a reconstruction cell (writes a genotype JSON)")
    add_options(p, SearchConfig)
    add_devices(p)
    add_workers(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_device(p)
    add_verbose(p)
    p.set_defaults(func=run)

    j = sub.add_parser("select", help="work on the selection of a `search --select halving` run (one more worker "
                       "on its study: another process, SLURM task or machine)")
    j.add_argument("--run", required=True, type=Path, help="the search's run folder (shared file system)")
    add_workers(j)
    j.add_argument("--wait", type=nonneg_int, default=0,
                   help="wait up to this many seconds for the search's DARTS stage to finish (default 0: refuse)")
    add_device(j)
    add_verbose(j)
    j.set_defaults(func=run_select)


def add_workers(p: argparse.ArgumentParser) -> None:
    """--workers of the selection."""
    p.add_argument("--workers", type=pos_int, default=1,
                   help="--select halving: trials at once on this machine, one per GPU (on a CPU, per group of cores)")


class RichSelectionProgress:
    """The selection's jobs on a rich Progress: one bar per job, one line when it ends."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.done = 0
        self.total = 0
        self.current = ""
        self.job: Any = None  # the running job's RichRetrainProgress

    def start(self, plan: Any, pool: list) -> None:
        self.total = plan.pool + sum(plan.survivors(r) for r in range(1, plan.rungs)) + \
            plan.final * (len(plan.seeds) - 1)
        self.bar.console.print(f"selection: {len(pool)} candidates, rungs of {', '.join(map(str, plan.epochs))} "
                               f"epochs, keeping 1/{plan.eta} each; the best {plan.final} retrained with seeds "
                               f"{', '.join(map(str, plan.seeds))}")

    def job_start(self, job: Any, candidate: Any) -> None:
        self.current = (f"c{job.candidate:03d} rung {job.rung} seed {job.seed} ({candidate.origin}: "
                        f"{candidate.genotype.summary()})")

    def retrain_progress(self) -> Any:
        from nas_recon.cli.train import RichRetrainProgress

        p = RichRetrainProgress(self.bar)
        start = p.start

        def named(epochs: int, steps: int, start_epoch: int) -> None:
            start(epochs, steps, start_epoch)
            self.bar.update(p.task, description=f"trial {self.done + 1}/{self.total}")

        p.start = named  # type: ignore[method-assign]
        self.job = p
        return p

    def job_end(self, job: Any, score: float, text: str = "") -> None:
        self.done += 1
        if self.job is not None and self.job.task is not None:
            self.bar.remove_task(self.job.task)
        self.job = None
        self.bar.console.print(f"{self.current}: {text or f'val PSNR {score:.2f} dB'}", soft_wrap=True)

    def waiting(self) -> None: ...


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
    if args.devices > 1:  # before the heavy imports: this process only launches the ranks
        check_ranks(args.devices, args.batch_size, args.device)
        return relaunch(args.argv, args.devices)
    from nas_recon.search.run import run_search

    cfg = config_from_args(SearchConfig, args, device=args.device, workers=args.workers)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    if args.resume and RECORD.resumable(args.out) is None:
        console.print(f"--resume: nothing to resume in {args.out} (no last.pt); starting a fresh run")
    with Progress(*columns, console=console) as bar:
        if selection_of(cfg.select).retrains:
            from nas_recon.select.halving import run_halving_search

            result = run_halving_search(cfg, args.resume, RichSearchProgress(bar), RichSelectionProgress(bar))
            console.print(selection_table(Path(cfg.out)))
            console.print(f"selected: {result.genotype.summary()}; wrote {result.run_dir / 'genotype.json'}")
            return 0
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


def selection_table(run_dir: Path) -> Table:
    """The finished selection's finalists and cost."""
    from nas_recon.select.halving import SELECTION, summary

    rec = summary(run_dir / SELECTION)
    t = Table(title=f"selection ({rec.get('cost', {}).get('retrainings', '?')} retraining-equivalents, "
                    f"{rec.get('cost', {}).get('worker_hours', '?')} worker-hours)")
    ssdu = rec.get("recipe", {}).get("supervision") == "ssdu"
    for col in ("rung", "epochs", "candidates", "promoted", "tau with next rung",
                "best val held-out loss" if ssdu else "best val PSNR"):
        t.add_column(col, justify="right")
    for r in rec.get("rungs", []):
        best = r.get("best_score")
        shown = "" if not isinstance(best, float) else f"{-best:.4f}" if ssdu else f"{best:.2f}"
        t.add_row(str(r["rung"]), str(r["epochs"]), str(r["candidates"]), str(r["promoted"]),
                  str(r.get("tau_with_next", "")), shown)
    return t


def run_select(args: argparse.Namespace) -> int:
    """Join the selection of a halving search as more workers."""
    import time

    from nas_recon.errors import ConfigError
    from nas_recon.search.config import PROPOSAL
    from nas_recon.select.halving import check_workers, config_of, run_selection

    deadline = time.time() + args.wait
    while not (args.run / PROPOSAL).is_file() and time.time() < deadline:
        time.sleep(5)
    if not (args.run / "run.json").is_file():
        raise ConfigError(f"--run {args.run}: not a search run folder (no run.json)")
    try:
        cfg = config_of(args.run)
    except ConfigError as e:
        raise ConfigError(f"--run {args.run}: not a search run to join ({str(e).split(': ', 1)[-1]})") from None
    if not selection_of(cfg.select).retrains:
        raise ConfigError(f"--run {args.run}: this search derives by --select {cfg.select}; only a --select halving "
                          "search has a selection to join")
    cfg.device = args.device
    check_workers(args.workers, args.device)
    with progress_bar() as bar:
        g = run_selection(cfg, args.run, RichSelectionProgress(bar), workers=args.workers)
    console.print(selection_table(args.run))
    console.print(f"selected: {g.summary()}; wrote {args.run / 'genotype.json'}")
    return 0
