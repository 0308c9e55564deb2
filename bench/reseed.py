"""Benchmark (not a test): retraining noise as a control for the equal-cost margins of "Search that pays" (issue 29).

Each margin of BENCHMARKS.md's rounds compares single retrainings (seed 0). This retrains each named run of a
`bench/search_pays.py` folder with more seeds under its own recorded settings (model or genotype, width, recipe,
size; RUN-seedS beside it), evaluates every retraining on the same test/ in one report, and prints per network the
mean and sd over its seeds, then each pair's difference of means with its standard error.

Resumable (finished runs are skipped). Writes OUT/reseed-TAG/summary.json.

Usage: python bench/reseed.py --out PAYS_OUT --runs t50/selected2-s0 t50/random-10 ... [--seeds 1 2] [--tag t50]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from stagelog import Log

from nas_recon.models.registry import FIXED_WIDTH
from nas_recon.pipelines.demo import BUDGETS, retrain_stage
from nas_recon.report.build import label_runs, make_report, read_run
from nas_recon.runtime import configure
from nas_recon.train.recipe import recipe_from_dict

ACCS = ("4x", "8x")


def reseed(run: Path, seed: int, b, device: str, say: Log) -> Path:
    """`run` retrained with `seed` under its recorded settings (RUN-seedS)."""
    meta = json.loads((run / "run.json").read_text())
    recipe = recipe_from_dict(meta["recipe"], str(run / "run.json"))
    spec = meta["model"]
    genotype = meta.get("genotype_file")
    model = None if genotype else spec["name"]
    channels = None if genotype or spec.get("channels") is None else int(spec["channels"])
    if model in FIXED_WIDTH:
        channels = None  # the model's own configuration
    data = Path(meta["data"]["folder"]) if isinstance(meta.get("data"), dict) and "folder" in meta["data"] else None
    if data is None:
        raise SystemExit(f"{run}: run.json names no data folder")
    return retrain_stage(data, run.parent / f"{run.name}-seed{seed}", f"{run.name} seed {seed}", recipe, b, seed,
                         device, say, model=model, genotype=genotype, channels=channels)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="a bench/search_pays.py output folder")
    p.add_argument("--runs", nargs="+", required=True, help="run folders under OUT, retrained with --seeds")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--budget", default="standard", choices=sorted(BUDGETS))
    p.add_argument("--tag", default="", help="names the report folder (OUT/reseed-TAG)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    configure()
    b = BUDGETS[a.budget]
    say = Log()
    groups: dict[str, list[Path]] = {}
    for name in a.runs:
        run = a.out / name
        groups[name] = [run] + [reseed(run, s, b, a.device, say) for s in a.seeds]
    say.stage("evaluate + report")
    runs = [r for g in groups.values() for r in g]
    root = a.out / f"reseed-{a.tag}"
    rep = make_report(runs, root / "report", a.out / "data" / "test", b.size, b.eval_crop, b.eval_max_slices,
                      a.device, 0, (), notes=[f"bench/reseed.py seeds 0 {' '.join(map(str, a.seeds))}"])
    read = [read_run(r) for r in runs]
    label_runs(read)
    label = {r["path"].resolve(): r["label"] for r in read}
    by = {(r["model"], r["acceleration"]): r for r in rep["rows"]}

    def fig(run: Path, acc: str, key: str) -> float:
        return by[(label[run.resolve()], acc)][key]["mean"]

    summary: dict[str, dict] = {}
    print("\nnetwork | seeds | PSNR 4x | SSIM 4x | PSNR 8x | SSIM 8x   (mean +- sd over seeds; per seed)")
    for name, g in groups.items():
        row = {}
        for acc in ACCS:
            for key in ("psnr", "ssim"):
                vals = [fig(r, acc, key) for r in g]
                row[f"{key} {acc}"] = vals
        summary[name] = row
        cells = [f"{statistics.mean(v):.4f} +- {statistics.stdev(v):.4f}" if "ssim" in k else
                 f"{statistics.mean(v):.2f} +- {statistics.stdev(v):.2f} ({', '.join(f'{x:.2f}' for x in v)})"
                 for k, v in row.items()]
        print(f"{name} | {len(g)} | " + " | ".join(cells))
    print("\npair | PSNR 4x: difference of means (standard error) | PSNR 8x")
    names = list(groups)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            parts = []
            for acc in ACCS:
                u, v = summary[x][f"psnr {acc}"], summary[y][f"psnr {acc}"]
                se = math.sqrt(statistics.variance(u) / len(u) + statistics.variance(v) / len(v))
                parts.append(f"{statistics.mean(u) - statistics.mean(v):+.2f} ({se:.2f})")
            print(f"{x} - {y} | " + " | ".join(parts))
    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.json").write_text(json.dumps({"seeds": [0, *a.seeds], "figures": summary}, indent=1))


if __name__ == "__main__":
    main()
