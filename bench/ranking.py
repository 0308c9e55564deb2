"""Benchmark (not a test): does the trained supernet rank cells as retraining does? (ranking fidelity)

Takes a `bench/scaling.py run` folder (its bias-free searched and random cells, retrained with seed 0, and its
darts searches `search-free-s{seed}`), runs a search with each further strategy on the same data and budget
(`search-free-{strategy}-s0`), retrains each strategy's derived cell and adds it to the cells, then scores every
cell with every strategy's trained supernet (one-shot L1 on fixed train_alpha batches, the cell's ops selected:
nas_recon.search.fidelity) and prints Kendall's tau between score and retrained PSNR at 4x, with a 95 %
bootstrap interval over cells. Each search folder gets a `fidelity.json` that `nas-recon report` shows beside
its genotype. Resumable like scaling.py (finished searches and retrainings are skipped).

    python bench/ranking.py --cells B --budget standard --strategies darts pcdarts gdas
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from scaling import Log, finished, steps_of, test_metrics

from nas_recon.genotype import genotype_from_dict, load_genotype
from nas_recon.io import atomic_write_text
from nas_recon.pipelines.demo import BUDGETS, budget_recipe, retrain_stage, search_stage
from nas_recon.runtime import configure
from nas_recon.search.fidelity import (
    bootstrap_tau,
    kendall_tau,
    load_search,
    oneshot_scores,
    verdict,
    write_fidelity,
)
from nas_recon.search.run import SCORE_BATCHES, fixed_batches, load_splits, split_dataset, split_loader


def cells_of(folder: Path, results: dict) -> dict[str, dict]:
    """name -> {genotype, psnr_4x, kind} for the folder's bias-free searched and random cells (retraining seed 0)."""
    out = {}
    for name, r in results.items():
        if r["kind"] in ("searched", "random") and r["bias"] == "free" and r["retrain_seed"] == 0:
            spec = json.loads((folder / name / "run.json").read_text())["model"]["genotype"]
            out[name] = {"genotype": genotype_from_dict(spec, name), "psnr_4x": r["psnr_4x"], "kind": r["kind"]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=Path, required=True, help="a bench/scaling.py run folder")
    p.add_argument("--budget", default="standard", choices=sorted(BUDGETS), help="the folder's budget")
    p.add_argument("--strategies", nargs="+", default=["darts", "pcdarts", "gdas"])
    p.add_argument("--space", default="paper_a")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bootstrap", type=int, default=2000)
    a = p.parse_args()
    configure()
    t0 = time.time()
    say = Log(t0)
    b = BUDGETS[a.budget]
    recipe = budget_recipe(b)
    folder, data = a.cells, a.cells / "data"
    results_file = folder / "results.json"
    results = json.loads(results_file.read_text())
    searches = {}
    for s in a.strategies:
        sdir = folder / ("search-free-s0" if s == "darts" else f"search-free-{s}-s0")
        search_stage(data, sdir, b, a.space, 0, a.device, say, f"search {sdir.name}", strategy=s)
        searches[s] = sdir
        rdir = folder / f"searched-free-{s}-s0-e{recipe.epochs}"
        if s != "darts" and rdir.name not in results:
            if not finished(rdir, recipe.epochs):
                retrain_stage(data, rdir, rdir.name, recipe, b, 0, a.device, say, genotype=str(sdir / "genotype.json"))
            g = load_genotype(sdir / "genotype.json")
            results[rdir.name] = {"label": rdir.name[: -len(f"-e{recipe.epochs}")], "kind": "searched",
                                  "bias": "free", "tag": f"free-{s}", "space": a.space, "retrain_seed": 0,
                                  "epochs": recipe.epochs, "steps": steps_of(rdir), "gflops": None,
                                  "cell": g.describe(), **test_metrics(rdir / "best.pt", data / "test", b.size,
                                                                       a.device)}
            atomic_write_text(results_file, json.dumps(results, indent=1))
    cells = cells_of(folder, results)
    names = sorted(cells)
    psnr = [cells[n]["psnr_4x"] for n in names]
    print(f"\n{len(names)} cells, retrained PSNR 4x at {a.budget} ({recipe.epochs} epochs):")
    rows = []
    scores_by: dict[str, list[float]] = {}
    for s, sdir in searches.items():
        supernet, cfg, space = load_search(sdir)
        _, a_files = load_splits(cfg)
        batches = fixed_batches(split_loader(cfg, split_dataset(cfg, a_files, 1), 1), SCORE_BATCHES)
        scores = oneshot_scores(supernet, space, [cells[n]["genotype"] for n in names], batches,
                                torch.device(a.device))
        scores_by[s] = scores
        tau = kendall_tau(scores, psnr)
        lo, hi = bootstrap_tau(scores, psnr, a.bootstrap)
        rows.append((s, tau, lo, hi))
        write_fidelity(sdir, {"tau": tau, "ci95": [lo, hi], "cells": len(names), "budget": a.budget,
                              "retrain_epochs": recipe.epochs, "verdict": verdict(tau, lo, hi),
                              "scores": dict(zip(names, scores, strict=True)),
                              "psnr_4x": dict(zip(names, psnr, strict=True)),
                              "command": f"bench/ranking.py --cells {folder} --budget {a.budget}"})
    print("| cell | kind | PSNR 4x | " + " | ".join(f"one-shot L1 ({s})" for s in searches) + " |")
    print("|---|---|---:|" + "---:|" * len(searches))
    for k, n in sorted(enumerate(names), key=lambda t: -psnr[t[0]]):
        print(f"| {n} | {cells[n]['kind']} | {psnr[k]:.2f} | "
              + " | ".join(f"{scores_by[s][k]:.4f}" for s in searches) + " |")
    print("\n| strategy | Kendall's tau | 95 % bootstrap interval | verdict |")
    print("|---|---:|---|---|")
    for s, tau, lo, hi in rows:
        print(f"| {s} | {tau:+.2f} | [{lo:+.2f}, {hi:+.2f}] | {'ranks' if lo > 0 else 'cannot rank'} |")
    print(f"\ntotal {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
