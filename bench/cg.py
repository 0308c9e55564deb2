"""Benchmark (not a test): conjugate-gradient iterations of the multi-coil soft data consistency vs PSNR.

    python bench/cg.py --out /tmp/cgbench [--coils 8] [--size 160] [--epochs 8]

Builds the multi-coil demo data, retrains modl-3 with `--soft-dc` (a learnt weight per fusion, MoDL's CG solve
at 10 iterations) under the quick recipe, then evaluates the one trained network on the test slices with every
fusion's CG iterations set to 1, 2, 3, 5, 10 and 20 (the weights unchanged): PSNR/SSIM at 4x and 8x and the
inference time per slice.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ITERATIONS = (1, 2, 3, 5, 10, 20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()

    import torch

    from nas_recon.data.demo import build_demo
    from nas_recon.engine.checkpoint import model_from_checkpoint
    from nas_recon.evaluate.scoring import evaluate, network_predictor
    from nas_recon.physics.fusion import KSpaceFusion
    from nas_recon.physics.masks import MaskSpec
    from nas_recon.train.recipe import load_recipe, with_overrides
    from nas_recon.train.retrain import RetrainConfig, run_retrain

    data, run, maps = args.out / "data", args.out / "modl-3-soft", args.out / "maps"
    if not (data / "manifest.json").is_file():
        build_demo(data, size=args.size, coils=args.coils, force=True)
    if not (run / "best.pt").is_file():
        recipe = with_overrides(load_recipe("quick"), {"epochs": args.epochs}, "bench")
        t0 = time.perf_counter()
        run_retrain(RetrainConfig(str(data), str(run), recipe, model="modl-3", device="cpu", size=args.size,
                                  maps_dir=str(maps), soft_dc=True))
        print(f"retrained modl-3 --soft-dc ({args.epochs} epochs, quick recipe): {time.perf_counter() - t0:.0f} s")
    model, _, _ = model_from_checkpoint(run / "best.pt")
    lams = [round(float(m.current_lam().detach()), 3) for m in model.modules() if isinstance(m, KSpaceFusion)]
    print(f"data: demo, {args.coils} coils, {args.size} x {args.size}; learnt DC weights (lam) {lams}")
    predict = network_predictor(model, torch.device("cpu"))
    evaluate(predict, data / "test", args.size, MaskSpec(), 0, batch_size=1, maps_dir=maps)  # test maps cached
    print("CG iterations | PSNR 4x | SSIM 4x | PSNR 8x | SSIM 8x | ms/slice")
    for n in ITERATIONS:
        for m in model.modules():
            if isinstance(m, KSpaceFusion):
                m.cg_iterations = n
        t0 = time.perf_counter()
        res = evaluate(predict, data / "test", args.size, MaskSpec(), 0, batch_size=1, maps_dir=maps)
        slices = sum(v["psnr"]["n"] for v in res["aggregate"].values())
        ms = 1000 * (time.perf_counter() - t0) / slices
        a = res["aggregate"]
        print(f"{n:>13} | {a['4x']['psnr']['mean']:7.2f} | {a['4x']['ssim']['mean']:.4f} | "
              f"{a['8x']['psnr']['mean']:7.2f} | {a['8x']['ssim']['mean']:.4f} | {ms:8.0f}", flush=True)


if __name__ == "__main__":
    main()
