"""Benchmark (not a test): SSDU self-supervision against its supervised twins (issue 31, "Search and retrain without
fully sampled data").

On the demo data of a `bench/search_pays.py` folder (OUT/data), train/ and val/ are undersampled once at 4x
(`nas-recon data undersample`, one seeded mask per volume: OUT/ssdu/data-4x). DC-CNN-3 and the searched network
(OUT/t100/search2-s0/genotype.json, round 2's selection at DC-CNN-3's FLOPs) are each trained three ways at the
budget's recipe, seed 0, and evaluated on the same fully sampled test/ at 4x and 8x:
- full: the supervised protocol (fresh masks at 4x and 8x, 64 x 64 crops): the runs search_pays already holds;
- full-4x: supervised at 4x only on 144 x 144 crops (about the pixels of SSDU's 64-row crops): the control for
  what SSDU's data sees (one acceleration, whole rows);
- ssdu: self-supervised on the undersampled files alone (rho 0.4, uniform selection, K = the recipe's repeats).
DC-CNN-3 also at K = 1 and 4 (multi-mask SSDU: Lambda draws per slice per epoch; steps grow with K).
With --search, the search that pays runs under SSDU too (search_pays's settings at DC-CNN-3's FLOPs, seed 0, on the
undersampled files alone: OUT/ssdu/search-s0); its network is retrained under SSDU and supervised, and its genotype
is compared with the supervised search's.

Resumable (finished runs are skipped). Prints the table and each target's margin; writes OUT/ssdu/summary.json.

Usage: python bench/ssdu.py --out PAYS_OUT [--budget standard] [--ks 1 4] [--search]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stagelog import Log

from nas_recon.data.undersample import undersample_folder
from nas_recon.pipelines.demo import BUDGETS, budget_recipe, retrain_stage, search_stage
from nas_recon.report.build import label_runs, make_report, read_run
from nas_recon.runtime import configure
from nas_recon.train.recipe import with_overrides

ACCS = ("4x", "8x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="a bench/search_pays.py output folder")
    p.add_argument("--budget", default="standard", choices=sorted(BUDGETS))
    p.add_argument("--genotype", type=Path, default=None, help="default OUT/t100/search2-s0/genotype.json")
    p.add_argument("--searched-run", type=Path, default=None, help="its supervised run (default OUT/t100/selected2-s0)")
    p.add_argument("--ks", type=int, nargs="*", default=[1, 4], help="DC-CNN-3 under SSDU at these K (repeats) too")
    p.add_argument("--search", action="store_true", help="run the search that pays under SSDU too")
    p.add_argument("--pool", type=int, default=18)
    p.add_argument("--rungs", type=int, default=2)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    configure()
    b = BUDGETS[a.budget]
    say = Log()
    data = a.out / "data"
    root = a.out / "ssdu"
    under = root / "data-4x"
    if not under.is_dir():
        say.stage("undersampling train/ and val/ at 4x")
        root.mkdir(parents=True, exist_ok=True)
        undersample_folder(data, under, 4.0, "random", 0)
    recipe = budget_recipe(b)
    ssdu = with_overrides(recipe, {"supervision": "ssdu"}, "bench ssdu")
    control = with_overrides(recipe, {"accelerations": [4.0], "crop": 144}, "bench full-4x")
    genotype = a.genotype or a.out / "t100" / "search2-s0" / "genotype.json"
    nets = {"dccnn-3": {"model": "dccnn-3"}, "searched": {"genotype": str(genotype)}}
    full = {"dccnn-3": a.out / "t100" / "dccnn-3-w32", "searched": a.searched_run or a.out / "t100" / "selected2-s0"}
    arms: dict[tuple[str, str], Path] = {}
    for name, kw in nets.items():
        arms[(name, "full")] = full[name]
        arms[(name, "ssdu")] = retrain_stage(under, root / f"{name}-ssdu", f"{name} ssdu", ssdu, b, 0, a.device,
                                             say, **kw)
        arms[(name, "full-4x")] = retrain_stage(data, root / f"{name}-full-4x", f"{name} full 4x", control, b, 0,
                                                a.device, say, **kw)
    if a.search:
        from nas_recon.genotype import load_genotype
        from nas_recon.search.budget import model_flops
        from nas_recon.select.halving import SELECTION, summary

        sdir = root / "search-s0"
        search_stage(under, sdir, b, "macro_a", 0, a.device, say, "search under SSDU, target 100 %, seed 0",
                     select="halving", flops_target=f"{model_flops('dccnn-3', 32) / 1e9:.6f}", recipe=b.recipe,
                     pool=a.pool, rungs=a.rungs, supervision="ssdu")
        nets["ssdu-searched"] = {"genotype": str(sdir / "genotype.json")}
        arms[("ssdu-searched", "ssdu")] = retrain_stage(under, root / "ssdu-searched-ssdu", "SSDU's network, SSDU",
                                                        ssdu, b, 0, a.device, say, genotype=str(sdir / "genotype.json"))
        arms[("ssdu-searched", "full")] = retrain_stage(data, root / "ssdu-searched-full", "SSDU's network, full",
                                                        recipe, b, 0, a.device, say,
                                                        genotype=str(sdir / "genotype.json"))
        mine, theirs = load_genotype(sdir / "genotype.json"), load_genotype(genotype)
        sel = summary(sdir / SELECTION)
        say.stage(f"SSDU search selected {mine.summary()} ({sel['winner']['origin']}; cost {sel['cost']}); the "
                  f"supervised search {theirs.summary()}; same network: {mine.summary() == theirs.summary()}")
    for k in a.ks:
        rk = with_overrides(ssdu, {"repeats": k}, f"bench K={k}")
        arms[("dccnn-3", f"ssdu-K{k}")] = retrain_stage(under, root / f"dccnn-3-ssdu-K{k}", f"dccnn-3 ssdu K={k}",
                                                        rk, b, 0, a.device, say, model="dccnn-3")
    say.stage("evaluate + report")
    runs = list(arms.values())
    rep = make_report(runs, root / "report", data / "test", b.size, b.eval_crop, b.eval_max_slices, a.device, 0,
                      ("zero-filled",), mixed_data=True, notes=[f"bench/ssdu.py budget {a.budget}"])
    read = [read_run(r) for r in runs]
    label_runs(read)
    label = {r["path"].resolve(): r["label"] for r in read}
    by = {(r["model"], r["acceleration"]): r for r in rep["rows"]}
    fig = {key: {acc: (by[(label[d.resolve()], acc)]["psnr"]["mean"], by[(label[d.resolve()], acc)]["ssim"]["mean"])
                 for acc in ACCS} for key, d in arms.items()}
    zf = {acc: by[("zero-filled", acc)]["psnr"]["mean"] for acc in ACCS}
    print("\nnetwork | training | PSNR 4x | SSIM 4x | PSNR 8x | SSIM 8x")
    for (name, arm), f in fig.items():
        print(f"{name} | {arm} | {f['4x'][0]:.2f} | {f['4x'][1]:.4f} | {f['8x'][0]:.2f} | {f['8x'][1]:.4f}")
    print(f"zero-filled | - | {zf['4x']:.2f} | | {zf['8x']:.2f} |")
    targets = {}
    for name in nets:
        s = fig[(name, "ssdu")]["4x"]
        for twin in ("full", "full-4x"):
            if (name, twin) not in fig:
                continue
            t = fig[(name, twin)]["4x"]
            targets[f"{name} ssdu - {twin} at 4x"] = {"psnr": round(s[0] - t[0], 3), "ssim": round(s[1] - t[1], 4)}
        targets[f"{name} ssdu - zero-filled at 4x"] = {"psnr": round(s[0] - zf["4x"], 3)}
    print("\ntargets (within 0.5 dB / 0.01 SSIM of the twin; at least 2 dB over zero-filled):")
    for k, v in targets.items():
        print(f"  {k}: " + ", ".join(f"{m} {x:+.4g}" for m, x in v.items()))
    (root / "summary.json").write_text(json.dumps({"figures": {f"{n} {a_}": f for (n, a_), f in fig.items()},
                                                   "zero_filled": zf, "targets": targets}, indent=1))


if __name__ == "__main__":
    main()
