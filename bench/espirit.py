"""Benchmark (not a test): ESPIRiT (sigpy's EspiritCalib) time per slice, and how well it recovers known maps.

Simulated slices: an ellipse phantom seen through birdcage maps, 4x fastMRI random mask (8 % centre); sizes of the
demo (320 x 320, 8 coils) and of fastMRI's knee k-space (640 x 368, 15 coils). Median of `--repeats` runs.

    python bench/espirit.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from nas_recon.physics.coils import acs_width, birdcage, espirit_maps, map_agreement
from nas_recon.physics.fft import fft2c
from nas_recon.physics.masks import make_mask


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    print("| k-space | coils | calibration columns | ESPIRiT s / slice | map agreement (median cos) |")
    print("|---|---:|---:|---:|---:|")
    for h, w, c in ((320, 320, 8), (640, 368, 15)):
        yy, xx = np.mgrid[:h, :w]
        obj = (((yy - h / 2) / (0.35 * h)) ** 2 + ((xx - w / 2) / (0.3 * w)) ** 2 < 1) * (1 + 0.3 * np.sin(xx / 9))
        maps = birdcage(c, h, w)
        k = fft2c(torch.from_numpy((maps * obj).astype(np.complex64))).numpy()
        m = make_mask(w, 4, None, "random", np.random.default_rng(0)).astype(np.float32)
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            est = espirit_maps(k * m, m)
            times.append(time.perf_counter() - t)
        print(f"| {h} x {w} | {c} | {acs_width(m)} | {statistics.median(times):.2f} | "
              f"{map_agreement(est, maps, obj > 0):.5f} |", flush=True)


if __name__ == "__main__":
    main()
