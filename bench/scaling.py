"""Benchmark (not a test): quality against training budget, searched vs random cells vs DC-CNN-3 / MoDL-3.

`run` trains one budget's worth of models on the offline demo data and evaluates them on test/ at 4x and 8x
with fixed masks; `table` gathers one or more `run` folders into the scaling table and plot.

    python bench/scaling.py run --out B --budget long --seeds 0 --random 2 --bias both --noise-seeds 1 2
    python bench/scaling.py run --out B --budget long --epochs 160 --seeds 0 --random 0 --bias free
    python bench/scaling.py table --runs B Bq Bs --plot scaling.png

A run folder holds `search-{free,biased}-s{seed}` (the budget's search), `{label}-e{epochs}[-r{k}]` retrainings
(label: searched-{free,biased}-s{seed}, random-{free,biased}-{i}, dccnn-3, modl-3; -rK: retraining seed K) and
`results.json`. Everything is resumable: finished searches and retrainings are skipped on a rerun, and `run
--no-train` only evaluates what has finished (to stop a long bench early and still use it). Random cells are
drawn within 15 % of the FLOPs of the searched cell of the first seed, with the searched cell's bias setting.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

from quality_at_cost import Log, log

from nas_recon.data.demo import build_demo
from nas_recon.evaluate.scoring import evaluate, predictor_for
from nas_recon.genotype import genotype_from_dict, load_genotype
from nas_recon.io import atomic_write_text
from nas_recon.pipelines.demo import BUDGETS, budget_recipe, retrain_stage, search_stage
from nas_recon.runtime import configure
from nas_recon.select.sample import genotype_macs, sample_genotypes, write_samples
from nas_recon.space import load_space

BIAS = {"free": False, "biased": True}
METRICS = ("psnr_4x", "ssim_4x", "psnr_8x", "ssim_8x")


def finished(run_dir: Path, epochs: int) -> bool:
    """A retraining with all its epochs in train_log.csv."""
    log_csv = run_dir / "train_log.csv"
    if not (run_dir / "best.pt").is_file() or not log_csv.is_file():
        return False
    rows = list(csv.DictReader(log_csv.open()))
    return bool(rows) and int(rows[-1]["epoch"]) >= epochs


def steps_of(run_dir: Path) -> int:
    """Optimiser steps of a finished retraining (train_log.csv's last row)."""
    return int(list(csv.DictReader((run_dir / "train_log.csv").open()))[-1]["step"])


def test_metrics(checkpoint: Path | None, test: Path, size: int, device: str) -> dict[str, float]:
    """{psnr_4x, ssim_4x, psnr_8x, ssim_8x} of a checkpoint (None: zero-filled) on TEST, fixed masks (seed 0)."""
    pred, _ = predictor_for(None if checkpoint is None else str(checkpoint),
                            "zero-filled" if checkpoint is None else None, device)
    m = evaluate(pred, test, size, seed=0)["aggregate"]
    return {f"{k}_{acc}": m[acc][k]["mean"] for acc in m for k in ("psnr", "ssim")}


def jobs(a: argparse.Namespace, out: Path) -> list[dict]:
    """Every (search, retraining) of this run, in the order they are trained."""
    todo: list[dict] = [{"label": m, "kind": "baseline", "model": m, "bias": None} for m in a.baselines]
    w = f"-w{a.cost_weight:g}" if a.cost_weight else ""
    for bias in (["free", "biased"] if a.bias == "both" else [a.bias]):
        for s in a.seeds:
            todo.append({"label": f"searched-{bias}{w}-s{s}", "kind": "searched", "bias": bias, "tag": bias + w,
                         "search": out / f"search-{bias}{w}-s{s}", "seed": s})
        for i in range(a.random):
            todo.append({"label": f"random-{bias}{w}-{i}", "kind": "random", "bias": bias, "tag": bias + w,
                         "index": i})
    for f in a.genotypes:  # hand-made controls, e.g. the cell a space allows at a baseline's cost
        bias = "biased" if load_genotype(f).bias else "free"
        todo.append({"label": f"control-{f.stem}", "kind": "control", "bias": bias, "tag": bias, "file": f})
    for k in a.noise_seeds:  # retraining noise: the first searched cell, other retraining seeds
        first = next((j for j in todo if j["kind"] == "searched"), None)
        if first is not None:
            todo.append({**first, "label": f"{first['label']}-r{k}", "retrain_seed": k, "noise_of": first["label"]})
    return todo


def genotype_file(a, job: dict, out: Path, data: Path, b, say: Log) -> Path:
    """The job's genotype: its search's result, or a random cell like the first seed's searched cell."""
    if job["kind"] == "control":
        return job["file"]
    if job["kind"] == "searched":
        cost = {"cost": a.cost, "cost_weight": a.cost_weight} if a.cost_weight else {}
        return search_stage(data, job["search"], b, a.space, job["seed"], a.device, say,
                            f"search {job['search'].name}", cell_bias=BIAS[job["bias"]], **cost)
    folder = out / f"random-{job['tag']}"
    if len(list(folder.glob("random_*.json"))) < a.random:
        like_file = genotype_file(a, {"kind": "searched", "bias": job["bias"], "seed": a.seeds[0],
                                      "search": out / f"search-{job['tag']}-s{a.seeds[0]}"}, out, data, b, say)
        space = load_space(a.space)
        like = load_genotype(like_file)
        write_samples(sample_genotypes(replace(space, bias=like.bias), a.random, 1234, like=like, tolerance=0.15),
                      folder)
    return sorted(folder.glob("random_*.json"))[job["index"]]


def run(a: argparse.Namespace) -> None:
    """Train (unless --no-train) and evaluate one budget."""
    configure()
    t0 = time.time()
    say = Log(t0)
    b = BUDGETS[a.budget]
    recipe = budget_recipe(b)
    if a.epochs:
        recipe.epochs = a.epochs
    out = a.out
    data = out / "data"
    if not (data / "manifest.json").is_file():
        log(t0, "building demo data")
        build_demo(data, "mni152", b.size, 0, b.slices, force=True)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    for job in jobs(a, out):
        rdir = out / (f"{job['label']}-e{recipe.epochs}" if "noise_of" not in job
                      else f"{job['noise_of']}-e{recipe.epochs}-r{job['retrain_seed']}")
        if not a.no_train:
            g = None if job["kind"] == "baseline" else str(genotype_file(a, job, out, data, b, say))
            started = time.time()
            if not finished(rdir, recipe.epochs):
                retrain_stage(data, rdir, rdir.name, recipe, b, job.get("retrain_seed", 0), a.device, say,
                              model=job.get("model"), genotype=g)
                log(t0, f"{rdir.name}: trained in {time.time() - started:.0f} s")
        if not finished(rdir, recipe.epochs) or rdir.name in results:
            continue
        cell = json.loads((rdir / "run.json").read_text()).get("model", {}).get("genotype")
        results[rdir.name] = {
            "label": job.get("noise_of", job["label"]), "kind": job["kind"], "bias": job["bias"],
            "tag": job.get("tag", job["bias"]), "space": a.space if job["kind"] != "baseline" else None,
            "retrain_seed": job.get("retrain_seed", 0), "epochs": recipe.epochs, "steps": steps_of(rdir),
            "gflops": genotype_macs(genotype_from_dict(cell, str(rdir)), 320) / 1e9 if cell else None,
            "cell": genotype_from_dict(cell, str(rdir)).describe() if cell else None,
            **test_metrics(rdir / "best.pt", data / "test", b.size, a.device),
        }
        atomic_write_text(results_file, json.dumps(results, indent=1))
        log(t0, f"{rdir.name}: 4x {results[rdir.name]['psnr_4x']:.2f} dB, 8x {results[rdir.name]['psnr_8x']:.2f}")
    zf = out / "zero-filled.json"
    if not zf.is_file():
        atomic_write_text(zf, json.dumps(test_metrics(None, data / "test", b.size, a.device)))
    log(t0, f"done: {len(results)} retrainings evaluated in {out}")


def tag_name(tag: str | None) -> str:
    """'free-w0.1' -> 'bias-free, cost weight 0.1'; 'free-gdas' -> 'bias-free, gdas'."""
    if tag is None:
        return ""
    tag, _, space = tag.partition("@")
    bias, *rest = tag.split("-")
    words = ["bias-free" if bias == "free" else "biased"]
    words += [f"cost weight {r[1:]}" if r[:1] == "w" and r[1:].replace(".", "", 1).isdigit() else r for r in rest]
    return ", ".join(([space] if space else []) + words)


def mean_sd(xs: list[float]) -> tuple[float, float]:
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def groups(results: dict) -> dict[tuple, dict[str, list[float]]]:
    """(steps, kind, bias) -> {metric: one value per cell (mean over its retrainings)}."""
    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in results.values():
        key = (r["steps"], r["label"])
        c = cells.setdefault(key, {"meta": r, **{m: [] for m in METRICS}})
        for m in METRICS:
            c[m].append(r[m])
    out: dict[tuple, dict[str, list[float]]] = {}
    for (steps, label), c in cells.items():
        r = c["meta"]
        kind = label if r["kind"] in ("baseline", "control") else r["kind"]
        tag = r.get("tag", r["bias"])
        if tag is not None and r.get("space") not in (None, "paper_a"):
            tag = f"{tag}@{r['space']}"  # cells of another space are another series
        g = out.setdefault((steps, kind, tag), {m: [] for m in METRICS})
        for m in g:
            g[m].append(statistics.mean(c[m]))
    return out


def noise(results: dict) -> dict[int, tuple[float, int]]:
    """steps -> (pooled sd of PSNR 4x over retrainings of one cell, number of cells with >1 retraining)."""
    by: dict[tuple[int, str], list[float]] = {}
    for r in results.values():
        by.setdefault((r["steps"], r["label"]), []).append(r["psnr_4x"])
    pooled: dict[int, list[float]] = {}
    for (steps, _), xs in by.items():
        if len(xs) > 1:
            pooled.setdefault(steps, []).append(statistics.variance(xs))
    return {s: (math.sqrt(statistics.mean(v)), len(v)) for s, v in pooled.items()}


def bootstrap_diff(a: list[float], b: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of mean(a) - mean(b), resampling cells."""
    if len(a) < 2 and len(b) < 2:
        return math.nan, math.nan
    rng = random.Random(seed)
    ds = sorted(statistics.mean(rng.choices(a, k=len(a))) - statistics.mean(rng.choices(b, k=len(b)))
                for _ in range(n))
    return ds[int(0.025 * n)], ds[int(0.975 * n) - 1]


def table(a: argparse.Namespace) -> None:
    """Print the scaling table (markdown) and write the plot."""
    results: dict = {}
    zf = None
    for folder in a.runs:
        results.update({f"{folder}/{k}": v for k, v in json.loads((folder / "results.json").read_text()).items()})
        if (folder / "zero-filled.json").is_file():
            zf = json.loads((folder / "zero-filled.json").read_text())
    g = {k: v for k, v in groups(results).items() if k[2] not in a.exclude}
    ref: set[tuple] = set()
    if a.reference:  # earlier tables' per-cell PSNR 4x (other metrics not carried: shown as '–')
        for row in json.loads(a.reference.read_text())["rows"]:
            key = (row["steps"], row["kind"], row["tag"])
            if key not in g:
                g[key] = {"psnr_4x": row["psnr_4x"], "ssim_4x": [], "psnr_8x": [], "ssim_8x": []}
                ref.add(key)
    nz = noise(results)
    print("| steps | model | n cells | PSNR 4x | SSIM 4x | PSNR 8x | SSIM 8x |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for (steps, kind, tag), v in sorted(g.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]))):
        name = kind if tag is None else f"{kind}, {tag_name(tag)}"
        cols = []
        for m, d in (("psnr_4x", 2), ("ssim_4x", 4), ("psnr_8x", 2), ("ssim_8x", 4)):
            if not v[m]:
                cols.append("–")
                continue
            mu, sd = mean_sd(v[m])
            cols.append(f"{mu:.{d}f}" + (f" ± {sd:.{d}f}" if len(v[m]) > 1 else ""))
        src = " (earlier table)" if (steps, kind, tag) in ref else ""
        print(f"| {steps} | {name}{src} | {len(v['psnr_4x'])} | " + " | ".join(cols) + " |")
    if zf:
        print(f"| – | zero-filled | – | {zf['psnr_4x']:.2f} | {zf['ssim_4x']:.4f} | {zf['psnr_8x']:.2f} | "
              f"{zf['ssim_8x']:.4f} |")
    print("\nretraining noise (pooled sd of one cell's PSNR 4x over retraining seeds):")
    for s, (sd, n) in sorted(nz.items()):
        print(f"  {s} steps: {sd:.2f} dB ({n} cell(s))")
    print("\ndifferences at 4x (cell means; 95 % bootstrap interval over cells):")
    tags = sorted({k[2] for k in g if k[2] is not None})
    for steps in sorted({k[0] for k in g}):
        for tag in tags:
            s = g.get((steps, "searched", tag))
            if not s:
                continue
            for other, ob in (("random", tag), ("dccnn-3", None), ("modl-3", None)):
                o = g.get((steps, other, ob))
                if o:
                    lo, hi = bootstrap_diff(s["psnr_4x"], o["psnr_4x"])
                    d = statistics.mean(s["psnr_4x"]) - statistics.mean(o["psnr_4x"])
                    ci = "" if math.isnan(lo) else f" [{lo:+.2f}, {hi:+.2f}]"
                    print(f"  {steps} steps, searched ({tag_name(tag)}) - {other}: {d:+.2f} dB{ci}")
    if a.plot:
        plot(g, zf, a.plot)
        print(f"\nplot: {a.plot}")


def plot(g: dict, zf: dict | None, path: Path) -> None:
    """PSNR at 4x against steps (log x, sd error bars), and searched - dccnn-3 / searched - random."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[str, list[tuple[int, float, float]]] = {}
    for (steps, kind, tag), v in g.items():
        name = kind if tag is None else f"{kind} ({tag_name(tag)})"
        series.setdefault(name, []).append((steps, *mean_sd(v["psnr_4x"])))
    for name, pts in sorted(series.items()):
        pts.sort()
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3,
                    label=name, linestyle="--" if "random" in name else "-")
    if zf:
        ax.axhline(zf["psnr_4x"], color="grey", linestyle=":", label="zero-filled")
    ax.set(xscale="log", xlabel="optimiser steps per model", ylabel="PSNR 4x (dB)", title="quality vs budget")
    ax.legend(fontsize=7)
    for tag in sorted({k[2] for k in g if k[2] is not None}):
        for other, ob, style in (("dccnn-3", None, "-"), ("random", tag, "--")):
            pts = sorted((steps, statistics.mean(v["psnr_4x"]) - statistics.mean(g[(steps, other, ob)]["psnr_4x"]))
                         for (steps, kind, t), v in g.items()
                         if kind == "searched" and t == tag and (steps, other, ob) in g)
            if pts:
                bx.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", linestyle=style,
                        label=f"searched ({tag_name(tag)}) - {other}")
    bx.axhline(0, color="black", linewidth=0.8)
    bx.set(xscale="log", xlabel="optimiser steps per model", ylabel="PSNR 4x difference (dB)",
           title="what the search buys")
    bx.legend(fontsize=7)
    budgets = sorted({k[0] for k in g})
    for axis in (ax, bx):  # the measured budgets as ticks (log axes' minor labels collide)
        axis.set_xticks(budgets, [str(b) for b in budgets])
        axis.minorticks_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train and evaluate one budget")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--budget", default="quick", choices=sorted(BUDGETS))
    r.add_argument("--epochs", type=int, default=0, help="retraining epochs instead of the recipe's (e.g. 160)")
    r.add_argument("--space", default="paper_a")
    r.add_argument("--cost", choices=["flops", "latency"], default="flops", help="with --cost-weight")
    r.add_argument("--cost-weight", type=float, default=0.0, help="cost-aware search (search --cost-weight)")
    r.add_argument("--seeds", type=int, nargs="*", default=[0])
    r.add_argument("--random", type=int, default=2)
    r.add_argument("--bias", choices=["free", "biased", "both"], default="both")
    r.add_argument("--noise-seeds", type=int, nargs="*", default=[], help="retrain the first searched cell again")
    r.add_argument("--baselines", nargs="*", default=["dccnn-3", "modl-3"])
    r.add_argument("--genotypes", type=Path, nargs="*", default=[], help="hand-made control cells to retrain")
    r.add_argument("--device", default="cpu")
    r.add_argument("--no-train", action="store_true", help="only evaluate the retrainings that have finished")
    t = sub.add_parser("table", help="gather run folders into the scaling table and plot")
    t.add_argument("--runs", type=Path, nargs="+", required=True)
    t.add_argument("--plot", type=Path)
    t.add_argument("--reference", type=Path, help="earlier per-cell PSNR 4x figures (bench/data/*.json)")
    t.add_argument("--exclude", nargs="*", default=[], help="series (tags) to leave out, e.g. free-gdas")
    a = p.parse_args()
    run(a) if a.cmd == "run" else table(a)


if __name__ == "__main__":
    main()
