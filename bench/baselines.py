"""Benchmark (not a test): the seed reports' handcrafted networks at the standard budget, beside the searched front
(issue 32, "The handcrafted networks of the seed reports").

On the demo data of a `bench/search_pays.py` folder (OUT/data), each baseline is retrained once under the budget's
recipe (seed 0; image-domain networks under the recipe's U-Net protocol), DC-CNN-3 once more with `--mixup`, and
everything is evaluated on test/ at 4x and 8x beside the networks that search_pays selected (OUT/tNN/selected*) and
the handcrafted families at the targets' widths. Ensembles (the mean of two networks' outputs, their costs summed)
are reported as rows too.

The searched front is the selected networks' mean PSNR per FLOPs target; each baseline is placed against it at its
own FLOPs: linear interpolation between the targets, or the nearest target outside them (said so).

Resumable: finished runs are skipped on a rerun. Prints the table and each baseline's place.

Usage: python bench/baselines.py --out PAYS_OUT [--budget standard] [--models NAME ...] [--mixup 0.4]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from stagelog import Log

from nas_recon.pipelines.demo import BUDGETS, budget_recipe, retrain_stage
from nas_recon.report.build import label_runs, make_report, read_run
from nas_recon.runtime import configure
from nas_recon.train.recipe import with_overrides

MODELS = ("squeeze-unet", "squeeze-unet-small", "attention-unet-small", "unet-effb0", "dircn-small", "attention-unet",
          "unet")
ACCS = ("4x", "8x")


def front(rows: dict, selected: dict[float, list[str]]) -> list[tuple[float, dict[str, float]]]:
    """(GFLOPs, mean PSNR per acceleration) of the selected networks of each target, cheapest first."""
    pts = []
    for runs in selected.values():
        g = statistics.mean(rows[(r, "4x")]["flops"] for r in runs) / 1e9
        pts.append((g, {a: statistics.mean(rows[(r, a)]["psnr"]["mean"] for r in runs) for a in ACCS}))
    return sorted(pts)


def place(g: float, psnr: dict[str, float], pts: list[tuple[float, dict[str, float]]]) -> str:
    """Where a network of `g` GFLOPs and `psnr` lies against the front."""
    lo, hi = pts[0], pts[-1]
    if g <= lo[0] or g >= hi[0]:
        near = lo if g <= lo[0] else hi
        where = "cheaper than" if g <= lo[0] else "dearer than"
        diff = ", ".join(f"{a} {psnr[a] - near[1][a]:+.2f} dB" for a in ACCS)
        return f"{where} the front ({g:.2f} G; its nearest point {near[0]:.2f} G): {diff} against that point"
    (x0, y0), (x1, y1) = next((p, q) for p, q in zip(pts, pts[1:], strict=False) if p[0] <= g <= q[0])
    t = (g - x0) / (x1 - x0)
    diff = ", ".join(f"{a} {psnr[a] - (y0[a] + t * (y1[a] - y0[a])):+.2f} dB" for a in ACCS)
    return f"inside the front's range ({g:.2f} G): {diff} against the front interpolated at its FLOPs"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="a bench/search_pays.py output folder")
    p.add_argument("--budget", default="standard", choices=sorted(BUDGETS))
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--mixup", type=float, default=0.4, help="DC-CNN-3 retrained once more with this mixup alpha")
    p.add_argument("--tag", default="2", help="search_pays's round tag (selected{TAG}-sS)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    configure()
    b = BUDGETS[a.budget]
    say = Log()
    data = a.out / "data"
    recipe = budget_recipe(b)
    bdir = a.out / "baselines"
    mix = with_overrides(recipe, {"mixup": a.mixup}, "--mixup")
    runs = [retrain_stage(data, bdir / f"dccnn-3-mixup{a.mixup:g}", "dccnn-3 with mixup", mix, b, 0, a.device, say,
                          model="dccnn-3")]
    for name in a.models:
        runs.append(retrain_stage(data, bdir / name, name, recipe, b, 0, a.device, say, model=name))
    selected = {}
    for tdir in sorted(a.out.glob("t*")):
        sel = sorted(d for d in tdir.glob(f"selected{a.tag}-s*") if (d / "best.pt").is_file())
        if sel:
            selected[float(tdir.name[1:]) / 100] = [str(d.relative_to(a.out)) for d in sel]
            runs += sel
    dccnn = a.out / "t100" / "dccnn-3-w32"
    runs.append(dccnn)
    hand = [d for t in ("t50",) for d in sorted((a.out / t).glob("*-w*")) if (d / "best.pt").is_file()]
    runs += hand
    first_sel = a.out / selected[1.0][0]
    ensembles = [[dccnn, bdir / "unet"], [first_sel, dccnn]] if (bdir / "unet").is_dir() else [[first_sel, dccnn]]
    say.stage("evaluate + report")
    rep = make_report(runs, a.out / "report-baselines", data / "test", b.size, b.eval_crop, b.eval_max_slices,
                      a.device, 0, ("zero-filled", "tv"), ensembles=ensembles,
                      notes=[f"bench/baselines.py budget {a.budget}"])
    read = [read_run(r) for r in runs]
    label_runs(read)
    labels = {str(r["path"].relative_to(a.out)): r["label"] for r in read}
    by_label = {(r["model"], r["acceleration"]): r for r in rep["rows"]}
    rows = {(name, acc): by_label[(lab, acc)] for name, lab in labels.items() for acc in ACCS}
    pts = front(rows, selected)
    print("\nnetwork | params | GFLOPs | PSNR 4x | SSIM 4x | PSNR 8x | SSIM 8x")
    for r in sorted({r["model"] for r in rep["rows"]}, key=lambda m: -by_label[(m, "4x")]["psnr"]["mean"]):
        x, y = by_label[(r, "4x")], by_label[(r, "8x")]
        g = "" if x["flops"] is None else f"{x['flops'] / 1e9:.2f}"
        pa = "" if x["params"] is None else f"{x['params']:,}"
        print(f"{r} | {pa} | {g} | {x['psnr']['mean']:.2f} | {x['ssim']['mean']:.4f} | {y['psnr']['mean']:.2f} | "
              f"{y['ssim']['mean']:.4f}")
    print("\nsearched front: " + "; ".join(f"{g:.2f} G: " + ", ".join(f"{k} {v:.2f}" for k, v in ps.items())
                                            for g, ps in pts))
    places = {}
    for d in runs:
        if d.parent != bdir:
            continue
        key = str(d.relative_to(a.out))
        x = rows[(key, "4x")]
        places[d.name] = place(x["flops"] / 1e9, {acc: rows[(key, acc)]["psnr"]["mean"] for acc in ACCS}, pts)
        print(f"  {d.name}: {places[d.name]}")
    (a.out / "baselines-summary.json").write_text(json.dumps({"front": pts, "places": places}, indent=1))


if __name__ == "__main__":
    main()
