"""Benchmark (not a test): cost-aware search, a sweep over the cost weight L (issue 11).

For each L: `search --cost flops|latency --cost-weight L` (quick budget settings, one seed), retrain the derived
cell under the budget's recipe, evaluate on test/; prints FLOPs, latency and PSNR/SSIM per L (the quality-cost
front) and writes a report whose PSNR-vs-FLOPs plot shows the cells.

Usage: python bench/cost_sweep.py --data DEMO_DATA --out bench-cost [--cost flops] [--weights 0 0.05 0.2 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nas_recon.genotype import load_genotype
from nas_recon.pipelines.demo import BUDGETS, DemoProgress, budget_recipe, retrain_stage, search_stage
from nas_recon.report.build import make_report
from nas_recon.runtime import configure


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("bench-cost"))
    p.add_argument("--cost", default="flops", choices=["flops", "latency"])
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.05, 0.2, 1.0])
    p.add_argument("--budget", default="quick", choices=sorted(BUDGETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    configure()
    b, t0 = BUDGETS[a.budget], time.time()
    recipe = budget_recipe(b)
    runs = []
    for w in a.weights:
        label = f"cost-{a.cost}-{w:g}"
        sdir = a.out / f"search-{label}"
        search_stage(a.data, sdir, b, "paper_a", a.seed, a.device, DemoProgress(), label, cost=a.cost,
                     cost_weight=w)
        g = load_genotype(sdir / "genotype.json")
        print(f"[{time.time() - t0:6.0f} s] L={w:g}: {g.describe()} (skips {g.extra.get('skips')})", flush=True)
        runs += [sdir, retrain_stage(a.data, a.out / label, label, recipe, b, 0, a.device, DemoProgress(),
                                     genotype=str(sdir / "genotype.json"))]
    rep = make_report(runs, a.out / "report", a.data / "test", b.size, b.eval_crop, b.eval_max_slices, a.device, 0,
                      ("zero-filled",), notes=[f"bench/cost_sweep.py --cost {a.cost} --weights {a.weights}"])
    print(f"\ncost sweep ({a.cost}), budget {a.budget}, total {time.time() - t0:.0f} s")
    print("L, GFLOPs, latency ms, PSNR 4x, SSIM 4x, PSNR 8x, SSIM 8x")
    for w in a.weights:
        label = f"cost-{a.cost}-{w:g}"
        rs = {r["acceleration"]: r for r in rep["rows"] if r["model"].split(":")[-1] == label}
        r4, r8 = rs["4x"], rs["8x"]
        print(f"{w:g}, {r4['flops'] / 1e9:.2f}, {r4['latency_ms']:.0f}, {r4['psnr']['mean']:.2f}, "
              f"{r4['ssim']['mean']:.4f}, {r8['psnr']['mean']:.2f}, {r8['ssim']['mean']:.4f}")


if __name__ == "__main__":
    main()
