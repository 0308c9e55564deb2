"""Benchmark (not a test): search strategies side by side on the demo data (issue 11).

Per strategy and seed: `nas-recon search` in its own process (wall time and peak RSS from os.wait4), the cell
chosen, then a retraining under the budget's recipe and evaluation on test/ at 4x and 8x; the random cells of
equal FLOPs (and zero-filled) from a `bench/quality_at_cost.py` folder are evaluated beside them.

Usage: python bench/strategies.py --out bench-strat --quality bench-out [--strategies darts2 gdas pcdarts]
       [--seeds 0 1 2] [--budget quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from nas_recon.genotype import load_genotype
from nas_recon.pipelines.demo import BUDGETS, DemoProgress, budget_recipe, retrain_stage
from nas_recon.report.build import make_report
from nas_recon.runtime import configure


def search(data: Path, out: Path, strategy: str, seed: int, b, device: str) -> dict:
    """Run the search CLI as a child process; its wall time and peak resident memory."""
    if (out / "genotype.json").is_file() and (out / "bench.json").is_file():
        return json.loads((out / "bench.json").read_text())
    args = [sys.executable, "-m", "nas_recon", "search", "--data", str(data), "--out", str(out), "--space",
            "paper_a", "--strategy", strategy, "--epochs", str(b.search_epochs), "--patience",
            str(b.search_patience), "--crop", str(b.search_crop), "--size", str(b.size), "--batch-size",
            str(b.search_batch), "--max-slices", str(b.search_max_slices), "--repeats", str(b.search_repeats),
            "--arch-lr", str(b.search_arch_lr), "--seed", str(seed), "--device", device]
    t = time.time()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"search {strategy} seed {seed} failed: {proc.stderr.read().decode()[-2000:]}")
    row = {"seconds": round(time.time() - t, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024)}
    (out / "bench.json").write_text(json.dumps(row))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench-strat"))
    p.add_argument("--quality", type=Path, required=True, help="a bench/quality_at_cost.py output folder")
    p.add_argument("--strategies", nargs="+", default=["darts2", "gdas", "pcdarts"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--budget", default="quick", choices=sorted(BUDGETS))
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    configure()
    b = BUDGETS[a.budget]
    data = a.quality / "data"
    recipe = budget_recipe(b)
    t0 = time.time()
    runs, info = [], {}
    for strategy in a.strategies:
        for s in a.seeds:
            label = f"{strategy}-seed{s}"
            sdir = a.out / f"search-{label}"
            row = search(data, sdir, strategy, s, b, a.device)
            g = load_genotype(sdir / "genotype.json")
            info[label] = {**row, "cell": g.describe(), "decided": g.extra.get("decided"),
                           "margin": g.extra.get("final_margin")}
            print(f"[{time.time() - t0:6.0f} s] {label}: {row['seconds']} s, {row['peak_rss_mb']} MB, {g.describe()}",
                  flush=True)
            runs += [sdir, retrain_stage(data, a.out / label, label, recipe, b, 0, a.device, DemoProgress(),
                                         genotype=str(sdir / "genotype.json"))]
    randoms = sorted(p for p in a.quality.glob("random_*") if (p / "last.pt").is_file())
    rep = make_report(runs + randoms, a.out / "report", data / "test", b.size, b.eval_crop, b.eval_max_slices,
                      a.device, 0, ("zero-filled",), notes=[f"bench/strategies.py --budget {a.budget}"])
    rows = rep["rows"]
    print(f"\nstrategies, budget {a.budget}, total {time.time() - t0:.0f} s")
    for acc in ("4x", "8x"):
        print(f"\n{acc}: PSNR / SSIM")
        for strategy in a.strategies:
            rs = [r for r in rows
                  if r["acceleration"] == acc and r["model"].split(":")[-1].startswith(f"{strategy}-seed")]
            ps, ss = [r["psnr"]["mean"] for r in rs], [r["ssim"]["mean"] for r in rs]
            print(f"  {strategy:8s} n={len(ps)} PSNR {statistics.mean(ps):.2f} sd {statistics.pstdev(ps):.2f} "
                  f"SSIM {statistics.mean(ss):.4f}  per seed {' '.join(f'{v:.2f}' for v in ps)}")
        rs = [r for r in rows if r["acceleration"] == acc and r["kind"] == "random"]
        ps = [r["psnr"]["mean"] for r in rs]
        if ps:
            print(f"  random   n={len(ps)} PSNR {statistics.mean(ps):.2f} sd {statistics.pstdev(ps):.2f} "
                  f"SSIM {statistics.mean(r['ssim']['mean'] for r in rs):.4f}")
        zf = next(r for r in rows if r["acceleration"] == acc and r["model"] == "zero-filled")
        print(f"  zero-filled PSNR {zf['psnr']['mean']:.2f} SSIM {zf['ssim']['mean']:.4f}")
    print()
    for label, row in info.items():
        print(f"{label}: search {row['seconds']} s, peak RSS {row['peak_rss_mb']} MB, decided {row['decided']}, "
              f"margin {row['margin']}, {row['cell']}")
    (a.out / "summary.json").write_text(json.dumps({"rows": rows, "searches": info}, indent=1))


if __name__ == "__main__":
    main()
