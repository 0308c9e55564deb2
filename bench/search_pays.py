"""Benchmark (not a test): does the search pay at equal FLOPs? (issue 29, "Search that pays")

On the offline demo data, for each FLOPs target (a fraction of DC-CNN-3's conv MACs at 320 x 320):
- `search --space macro_a --select halving --flops-target G` once per search seed (DARTS proposes, successive
  halving over short retrainings on train/, scored on val/, decides); the selected genotype is then retrained from
  scratch under the budget's recipe like every other network (seed 0);
- the handcrafted families in their published structure (3 cascades of 3 blocks) with the width set to the target:
  dccnn-3, modl-3 and rdn-3 (`retrain --model NAME --channels W`);
- K random networks of the band (`sample --space macro_a --flops-target G`, sampler seed 1234), each retrained;
  their mean +- sd, and the equal-compute control of Li & Talwalkar: the random networks retrained within the
  selection's budget (its cost in retraining-equivalents, rounded down), the best of them by validation PSNR
  (every val slice at 4x and 8x), tested like the others;
- everything evaluated on test/ at 4x and 8x with fixed masks (nas_recon.report.build).

Resumable: finished runs are skipped on a rerun. Prints one table per target and the margins the issue targets.

Usage: python bench/search_pays.py --out OUT [--budget standard] [--targets 1.0 0.5] [--seeds 0 1 2]
       [--seeds-at 0.5=0] [--random 12] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

from nas_recon.data.demo import build_demo
from nas_recon.evaluate.scoring import evaluate, predictor_for
from nas_recon.genotype import load_genotype, save_genotype
from nas_recon.physics.masks import MaskSpec
from nas_recon.pipelines.demo import BUDGETS, DemoProgress, budget_recipe, retrain_stage, search_stage
from nas_recon.report.build import label_runs, make_report, read_run
from nas_recon.runtime import configure
from nas_recon.search.budget import FlopsBand, model_flops, width_for
from nas_recon.select.halving import SELECTION, summary
from nas_recon.select.pool import random_network
from nas_recon.space.spaces import load_space

SPACE = "macro_a"
FAMILIES = ("dccnn-3", "modl-3", "rdn-3")


def log(t0: float, text: str) -> None:
    print(f"[{time.time() - t0:7.0f} s] {text}", flush=True)


class Log(DemoProgress):
    """Stage messages of the shared search/retrain stages, timestamped."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0

    def stage(self, text: str) -> None:
        log(self.t0, text)


def val_psnr(run: Path, data: Path, size: int) -> float:
    """Mean PSNR of a retrain run's best.pt on every validation slice at 4x and 8x (cached in the run folder)."""
    cache = run / "val-score.json"
    if cache.is_file():
        return json.loads(cache.read_text())["psnr"]
    predict, _ = predictor_for(str(run / "best.pt"), None, "cpu")
    res = evaluate(predict, data / "val", size, MaskSpec(), 0)
    psnr = statistics.mean(s["psnr"] for s in res["slices"])
    cache.write_text(json.dumps({"psnr": psnr}))
    return psnr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench-pays"))
    p.add_argument("--budget", default="standard", choices=sorted(BUDGETS))
    p.add_argument("--targets", type=float, nargs="+", default=[1.0, 0.5], help="fractions of DC-CNN-3's FLOPs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="search seeds at every target")
    p.add_argument("--seeds-at", nargs="*", default=["0.5=0"], help="other search seeds at a target: FRACTION=S,S")
    p.add_argument("--random", type=int, default=12, help="random networks of each band")
    p.add_argument("--pool", type=int, default=18)
    p.add_argument("--rungs", type=int, default=2)
    p.add_argument("--eta", type=int, default=3, help="halving's reduction factor (the first rung: 1/eta^(rungs-1) "
                   "of the epochs)")
    p.add_argument("--tag", default="", help="names this round's search and selected folders (search{TAG}-sS)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    configure()
    b = BUDGETS[a.budget]
    t0 = time.time()
    say = Log(t0)
    data = a.out / "data"
    if not (data / "manifest.json").is_file():
        log(t0, "building demo data")
        build_demo(data, "mni152", b.size, 0, b.slices, force=True)
    recipe = budget_recipe(b)
    space = load_space(SPACE)
    dccnn = model_flops("dccnn-3", 32)
    seeds_at = {float(k): [int(s) for s in v.split(",")] for k, v in (x.split("=") for x in a.seeds_at)}
    results = {}
    for frac in a.targets:
        target = dccnn * frac
        band = FlopsBand(target, 0.05, f"{frac:.0%} of dccnn-3")
        tdir = a.out / f"t{round(frac * 100)}"
        runs: list[Path] = []
        selected: dict[int, dict] = {}
        for s in seeds_at.get(frac, a.seeds):
            sdir = tdir / f"search{a.tag}-s{s}"
            search_stage(data, sdir, b, SPACE, s, a.device, say, f"target {frac:.0%}: search seed {s}",
                         select="halving", flops_target=f"{target / 1e9:.6f}", recipe=b.recipe, pool=a.pool,
                         rungs=a.rungs, eta=a.eta)
            g = load_genotype(sdir / "genotype.json")
            sel = summary(sdir / SELECTION)
            log(t0, f"seed {s}: selected {g.summary()} ({sel['winner']['origin']}), cost {sel['cost']}")
            rdir = retrain_stage(data, tdir / f"selected{a.tag}-s{s}", f"selected{a.tag}-s{s}", recipe, b, 0,
                                 a.device, say, genotype=str(sdir / "genotype.json"))
            runs.append(rdir)
            selected[s] = {"run": rdir.name, "network": g.summary(), "origin": sel["winner"]["origin"],
                           "cost": sel["cost"], "rungs": sel["rungs"]}
        hand = {}
        for name in FAMILIES:
            w = width_for(name, band)
            rdir = retrain_stage(data, tdir / f"{name}-w{w}", f"{name} width {w}", recipe, b, 0, a.device, say,
                                 model=name, channels=w)
            hand[name] = {"run": rdir.name, "width": w, "gflops": model_flops(name, w) / 1e9}
            runs.append(rdir)
        gdir = tdir / "random-genotypes"
        import numpy as np

        rng = np.random.default_rng([1234, round(frac * 100)])
        rand = []
        for k in range(a.random):
            f = gdir / f"random_{k:02d}.json"
            if not f.is_file():
                g = random_network(space, band, rng)
                g = replace(g, extra={"sampled": {"seed": [1234, round(frac * 100)], "index": k,
                                                  "uniform_over": "cells and macro choices, no none",
                                                  "flops_band": band.to_dict()}})  # the report's random rows
                gdir.mkdir(parents=True, exist_ok=True)
                save_genotype(g, f)
            rdir = retrain_stage(data, tdir / f"random-{k:02d}", f"random-{k:02d}", recipe, b, 0, a.device, say,
                                 genotype=str(f))
            rand.append(rdir)
            runs.append(rdir)
        log(t0, f"target {frac:.0%}: evaluate + report")
        rep = make_report(runs, tdir / f"report{a.tag}", data / "test", b.size, b.eval_crop, b.eval_max_slices,
                          a.device, 0, ("zero-filled",),
                          notes=[f"bench/search_pays.py target {frac:.0%} budget {a.budget}"])
        read = [read_run(r) for r in runs]
        label_runs(read)
        labels = {r["path"].name: r["label"] for r in read}
        rows = {(r["model"], r["acceleration"]): r for r in rep["rows"]}
        rows = {(name, acc): rows[(lab, acc)] for name, lab in labels.items() for acc in ("4x", "8x")}
        vals = {r.name: val_psnr(r, data, b.size) for r in rand}
        results[frac] = summarise(frac, band, selected, hand, rand, vals, rows)
    (a.out / f"summary{a.tag}.json").write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1))
    log(t0, "done")


def summarise(frac: float, band: FlopsBand, selected: dict, hand: dict, rand: list[Path], vals: dict,
              rows: dict) -> dict:
    """Print the target's table and margins; return them."""
    out: dict = {"band": band.to_dict(), "selected": selected, "handcrafted": hand}
    print(f"\n=== target {frac:.0%} of dccnn-3: {band.describe()} ===")
    accs = ("4x", "8x")

    def metric(run: str, acc: str, m: str) -> float:
        return rows[(run, acc)][m]["mean"]

    rnames = [r.name for r in rand]
    rs = {acc: {m: [metric(n, acc, m) for n in rnames] for m in ("psnr", "ssim")} for acc in accs}
    for acc in accs:
        print(f"\n{acc}: network, GFLOPs, PSNR, SSIM")
        for s, sel in selected.items():
            print(f"  selected seed {s} ({sel['origin']}: {sel['network']})  {metric(sel['run'], acc, 'psnr'):.2f} "
                  f"{metric(sel['run'], acc, 'ssim'):.4f}")
        for name, h in hand.items():
            print(f"  {name} width {h['width']} ({h['gflops']:.2f} G)  {metric(h['run'], acc, 'psnr'):.2f} "
                  f"{metric(h['run'], acc, 'ssim'):.4f}")
        ps, ss = rs[acc]["psnr"], rs[acc]["ssim"]
        print(f"  random x{len(ps)}: PSNR {statistics.mean(ps):.2f} ± {statistics.stdev(ps):.2f}, SSIM "
              f"{statistics.mean(ss):.4f} ± {statistics.stdev(ss):.4f}")
    for s, sel in selected.items():
        k = max(1, math.floor(sel["cost"]["retrainings"]))
        pick = max(rnames[:k], key=lambda n: vals[n])
        line = {"seed": s, "control_k": k, "control_pick": pick}
        for acc in accs:
            sp, ssim = metric(sel["run"], acc, "psnr"), metric(sel["run"], acc, "ssim")
            best_hand = max(hand.values(), key=lambda h: metric(h["run"], acc, "psnr"))
            line[acc] = {
                "psnr": sp, "ssim": ssim,
                "vs_best_handcrafted_psnr": sp - metric(best_hand["run"], acc, "psnr"),
                "vs_handcrafted_ssim": min(ssim - metric(h["run"], acc, "ssim") for h in hand.values()),
                "vs_random_mean_in_sd": (sp - statistics.mean(rs[acc]["psnr"])) / statistics.stdev(rs[acc]["psnr"]),
                "vs_control_psnr": sp - metric(pick, acc, "psnr"),
                "vs_control_ssim": ssim - metric(pick, acc, "ssim")}
        out.setdefault("margins", []).append(line)
        print(f"\nseed {s}: selection cost {sel['cost']['retrainings']} retrainings, control = best of {k} random "
              f"by val ({pick})")
        for acc in accs:
            m = line[acc]
            print(f"  {acc}: vs best handcrafted {m['vs_best_handcrafted_psnr']:+.2f} dB, SSIM vs every handcrafted "
                  f"{m['vs_handcrafted_ssim']:+.4f}; vs random mean {m['vs_random_mean_in_sd']:+.1f} sd; vs control "
                  f"{m['vs_control_psnr']:+.2f} dB / {m['vs_control_ssim']:+.4f} SSIM")
    out["random"] = {acc: {m: {"mean": statistics.mean(v), "sd": statistics.stdev(v), "n": len(v)}
                           for m, v in rs[acc].items()} for acc in accs}
    return out


if __name__ == "__main__":
    main()
