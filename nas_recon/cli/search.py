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
    config_from_args,
    console,
    relaunch,
)
from nas_recon.search.config import SearchConfig


def register(sub: argparse._SubParsersAction) -> None:
    """Add `search`."""
    p = sub.add_parser("search", help="DARTS search of a reconstruction cell (writes a genotype JSON)")
    add_options(p, SearchConfig)
    add_devices(p)
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
    if args.devices > 1:  # before the heavy imports: this process only launches the ranks
        return relaunch(args.argv, args.devices)
    from nas_recon.search.run import run_search

    cfg = config_from_args(SearchConfig, args, device=args.device)
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
