"""`nas-recon report`: gather search and retrain runs into report.md / report.json / plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from nas_recon.cli.common import add_device, add_verbose, console, nonneg_int, seed_int, size_int
from nas_recon.defaults import SIZE


def register(sub: argparse._SubParsersAction) -> None:
    """Add `report`."""
    p = sub.add_parser("report", help="compare retrained models: tables, Pareto plot, images, cells")
    p.add_argument("--runs", required=True, type=Path, nargs="+", help="search and retrain run folders")
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.add_argument("--data", type=Path, help="test folder (default: DATA/test of the first retrain run)")
    p.add_argument("--size", type=size_int, default=SIZE)
    p.add_argument("--crop", type=nonneg_int, default=0, help="evaluate on centre crops (0 = full image)")
    p.add_argument("--max-slices", type=nonneg_int)
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the fixed evaluation masks")
    p.add_argument("--no-tv", action="store_true", help="leave the TV baseline out")
    p.add_argument("--mixed-data", action="store_true",
                   help="accept runs trained on different data (by content) and mark them, instead of refusing")
    p.add_argument("--ensemble", type=Path, nargs="+", action="append", metavar="RUN",
                   help="two or more of the --runs retrain runs, reported as one more row: the mean of their outputs, "
                        "their params, FLOPs and latency summed (repeat for several ensembles)")
    add_device(p)
    add_verbose(p)
    p.set_defaults(func=run)


def summary_table(report: dict) -> Table:
    """PSNR/SSIM per acceleration and cost, one row per model."""
    rows = report["rows"]
    accs = sorted({r["acceleration"] for r in rows}, key=lambda a: float(a[:-1]))
    t = Table(title="test metrics (mean over slices)", caption=" ".join(report.get("budget_notes") or []) or None)
    t.add_column("model", overflow="fold")  # full run names, wrapped on narrow terminals
    t.add_column("params", justify="right")
    t.add_column("GFLOPs", justify="right")
    for a in accs:
        t.add_column(f"PSNR {a}", justify="right")
        t.add_column(f"SSIM {a}", justify="right")
    models = list(dict.fromkeys(r["model"] for r in rows))
    for m in sorted(models, key=lambda m: -max(r["psnr"]["mean"] for r in rows if r["model"] == m)):
        rs = {r["acceleration"]: r for r in rows if r["model"] == m}
        first = next(iter(rs.values()))
        cells = ["–" if first["params"] is None else f"{first['params']:,}",
                 "–" if first["flops"] is None else f"{first['flops'] / 1e9:.2f}"]
        for a in accs:
            cells += [f"{rs[a]['psnr']['mean']:.2f}", f"{rs[a]['ssim']['mean']:.4f}"] if a in rs else ["", ""]
        t.add_row(m, *cells)
    return t


def run(args: argparse.Namespace) -> int:
    """Build the report."""
    from nas_recon.report.build import make_report

    classical = ("zero-filled",) if args.no_tv else ("zero-filled", "tv")
    with console.status("building the report") as status:
        report = make_report(args.runs, args.out, args.data, args.size, args.crop or None, args.max_slices,
                             args.device, args.seed, classical, progress=lambda text: status.update(text),
                             mixed_data=args.mixed_data, ensembles=args.ensemble)
    console.print(summary_table(report))
    console.print(f"report: {args.out / 'report.md'}")
    return 0
