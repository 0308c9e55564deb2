"""Benchmark (not a test): searched cells vs baselines vs random cells of similar FLOPs, same recipe.

On the offline demo data: a search per seed, each searched genotype retrained; dccnn-3, modl-3, rdn-3,
rdn-8 and unet retrained; N random genotypes within 15 % of the FLOPs of the first searched cell; everything
evaluated on test/ at 4x and 8x with fixed masks; prints PSNR/SSIM per acceleration, FLOPs, latency, and the
spread across search seeds and across random cells. Resumable: finished runs are skipped on a rerun.

With --retrain-seeds 0 1 2 every searched and random cell is retrained once per seed (the baselines once):
a cell's figure is then the mean over its retrainings, and the retraining noise (the pooled within-cell sd) is
printed beside the spread across cells.

Usage: python bench/quality_at_cost.py --out bench-out [--seeds 0 1 2] [--random 5] [--budget quick]
       [--device cpu] [--baselines dccnn-3 modl-3 ...] [--retrain-seeds 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import time
from pathlib import Path

from nas_recon.data.demo import build_demo
from nas_recon.genotype import load_genotype
from nas_recon.pipelines.demo import BUDGETS, DemoProgress, budget_recipe, retrain_stage, search_stage
from nas_recon.report.build import make_report
from nas_recon.runtime import configure
from nas_recon.select.sample import sample_genotypes, write_samples
from nas_recon.space import load_space

BASELINES = ("dccnn-3", "modl-3", "rdn-3", "rdn-8", "unet")


def log(t0: float, text: str) -> None:
    print(f"[{time.time() - t0:7.0f} s] {text}", flush=True)


class Log(DemoProgress):
    """Stage messages of the shared search/retrain stages, timestamped."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0

    def stage(self, text: str) -> None:
        log(self.t0, text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench-out"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--random", type=int, default=5)
    p.add_argument("--budget", default="quick", choices=sorted(BUDGETS))
    p.add_argument("--device", default="cpu")
    p.add_argument("--baselines", nargs="+", default=list(BASELINES), choices=BASELINES,
                   help="handcrafted baselines to retrain (default: all)")
    p.add_argument("--cell-bias", action="store_true",
                   help="outside SPEC: searched and random cells get a bias on every conv (search --cell-bias)")
    p.add_argument("--retrain-seeds", type=int, nargs="+", default=[0],
                   help="retrain every searched and random cell once per seed (folder NAME for the first, NAME-rK)")
    p.add_argument("--select", choices=["alpha", "perturb"], default="alpha", help="derivation rule (search --select)")
    a = p.parse_args()
    configure()
    b = BUDGETS[a.budget]
    t0 = time.time()
    data = a.out / "data"
    if not (data / "manifest.json").is_file():
        log(t0, "building demo data")
        build_demo(data, "mni152", b.size, 0, b.slices, force=True)
    recipe = budget_recipe(b)
    say = Log(t0)
    runs: list[Path] = []
    for s in a.seeds:
        sdir = a.out / f"search-seed{s}"
        search_stage(data, sdir, b, "paper_a", s, a.device, say, f"search, seed {s}", cell_bias=a.cell_bias,
                     select=a.select)
        log(t0, f"seed {s}: {load_genotype(sdir / 'genotype.json').describe()}")
        runs.append(sdir)
        runs += retrain_cell(a, data, f"searched-seed{s}", sdir / "genotype.json", recipe, b, say)
    for name in a.baselines:
        retrain_stage(data, a.out / name, name, recipe, b, 0, a.device, say, model=name)
        runs.append(a.out / name)
    rand_dir = a.out / "random-genotypes"
    if len(list(rand_dir.glob("random_*.json"))) < a.random:
        like = load_genotype(a.out / f"search-seed{a.seeds[0]}" / "genotype.json")
        write_samples(sample_genotypes(load_space("paper_a"), a.random, 1234, like=like, tolerance=0.15), rand_dir)
    for f in sorted(rand_dir.glob("random_*.json"))[: a.random]:
        log(t0, f"{f.stem}: {load_genotype(f).describe()}")
        runs += retrain_cell(a, data, f.stem, f, recipe, b, say)
    log(t0, "evaluate + report")
    rep = make_report(runs, a.out / "report", data / "test", b.size, b.eval_crop, b.eval_max_slices, a.device, 0,
                      ("zero-filled", "tv"), notes=[f"bench/quality_at_cost.py --budget {a.budget} seeds {a.seeds}"
                             + (" --cell-bias" if a.cell_bias else "")])
    rows = rep["rows"]
    print(f"\nquality at cost, budget {a.budget}, recipe {recipe.to_dict()}, total {time.time() - t0:.0f} s")
    for acc in ("4x", "8x"):
        print(f"\n{acc}: model, kind, GFLOPs, latency ms, PSNR, SSIM")
        for r in sorted((r for r in rows if r["acceleration"] == acc), key=lambda r: -r["psnr"]["mean"]):
            fl = "-" if r["flops"] is None else f"{r['flops'] / 1e9:.2f}"
            lat = "-" if r["latency_ms"] is None else f"{r['latency_ms']:.0f}"
            print(f"  {r['model']:20s} {r['kind']:9s} {fl:>6s} {lat:>6s} {r['psnr']['mean']:7.2f} "
                  f"{r['ssim']['mean']:.4f}")
        for kind in ("searched", "random"):
            cells = per_cell([r for r in rows if r["acceleration"] == acc and r["kind"] == kind])
            if cells:
                ps = [statistics.mean(v["psnr"]) for v in cells.values()]
                ss = [statistics.mean(v["ssim"]) for v in cells.values()]
                sd = statistics.pstdev(ps) if len(ps) > 1 else 0.0
                print(f"  {kind}: n={len(ps)} cells, PSNR mean {statistics.mean(ps):.2f} sd {sd:.2f} "
                      f"(min {min(ps):.2f}, max {max(ps):.2f}); SSIM mean {statistics.mean(ss):.4f}")
                if len(a.retrain_seeds) > 1:
                    for name, v in cells.items():
                        print(f"    {name}: PSNR {statistics.mean(v['psnr']):.2f} over retrainings "
                              f"{' / '.join(f'{x:.2f}' for x in v['psnr'])}")
                    noise = statistics.mean(statistics.pvariance(v["psnr"]) for v in cells.values()) ** 0.5
                    print(f"  {kind}: retraining noise (pooled within-cell sd) {noise:.2f} dB")
        base = [r for r in rows if r["acceleration"] == acc and r["kind"] == "baseline"]
        best = max(base, key=lambda r: r["psnr"]["mean"])
        print(f"  best baseline: {best['model']} PSNR {best['psnr']['mean']:.2f} SSIM {best['ssim']['mean']:.4f}")
    print("\n" + seed_agreement([load_genotype(a.out / f"search-seed{s}" / "genotype.json") for s in a.seeds]))
    for s in a.seeds:
        slog = list(csv.DictReader((a.out / f"search-seed{s}" / "search_log.csv").open()))
        last = slog[-1]
        print(f"seed {s}: {len(slog)} epochs, final margin {float(last.get('chosen_margin', 'nan')):.4f}, "
              f"drift {float(last.get('drift', 'nan')):.4f}, decided {last.get('decided')}, "
              f"mean entropy {float(last.get('mean_entropy', 'nan')):.4f}")
    (a.out / "summary.json").write_text(json.dumps(rows, indent=1))


def retrain_cell(a, data: Path, name: str, genotype: Path, recipe, b, say) -> list[Path]:
    """Retrain one cell once per --retrain-seeds seed; its run folders."""
    dirs = []
    for k in a.retrain_seeds:
        rdir = a.out / (name if k == a.retrain_seeds[0] else f"{name}-r{k}")
        retrain_stage(data, rdir, rdir.name, recipe, b, k, a.device, say, genotype=str(genotype))
        dirs.append(rdir)
    return dirs


def per_cell(rows: list[dict]) -> dict[str, dict[str, list[float]]]:
    """Report rows of one kind and acceleration grouped by cell (run folder without its -rK suffix)."""
    cells: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        c = cells.setdefault(re.sub(r"-r\d+$", "", r["model"]), {"psnr": [], "ssim": []})
        c["psnr"].append(r["psnr"]["mean"])
        c["ssim"].append(r["ssim"]["mean"])
    return cells


def seed_agreement(genotypes) -> str:
    """How often the seeds pick the same edges and the same (edge, op) choices, pairwise."""
    import itertools

    def edges(g):
        return {(i, j) for i, n in enumerate(g.cell) for j in n.inputs}

    def choices(g):
        return {(i, j, o) for i, n in enumerate(g.cell) for j, o in zip(n.inputs, n.ops, strict=True)}

    pairs = list(itertools.combinations(genotypes, 2))
    if not pairs:
        return "seed agreement: one seed only"
    e = statistics.mean(len(edges(x) & edges(y)) / len(edges(x)) for x, y in pairs)
    c = statistics.mean(len(choices(x) & choices(y)) / len(choices(x)) for x, y in pairs)
    same = sum(x.same_cell(y) for x, y in pairs)
    return (f"seed agreement over {len(pairs)} pairs: same edges {100 * e:.0f} %, same edge+op {100 * c:.0f} %, "
            f"identical cells {same}/{len(pairs)}")


if __name__ == "__main__":
    main()
