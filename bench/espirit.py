"""Benchmark (not a test): ESPIRiT time per slice (BART's ecalib and sigpy's EspiritCalib, side by side), and how well
each recovers known maps.

Simulated slices: an ellipse phantom seen through birdcage maps, 4x and 8x fastMRI random masks; sizes of the
demo (320 x 320, 8 coils) and of fastMRI's knee k-space (640 x 368, 15 coils). Median of `--repeats` runs.

    python bench/espirit.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from nas_recon.physics.bart import available
from nas_recon.physics.coils import acs_width, birdcage, espirit_maps, map_agreement
from nas_recon.physics.fft import fft2c
from nas_recon.physics.masks import make_mask


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    print("| k-space | coils | acceleration | calibration columns | backend | ESPIRiT s / slice | "
          "map agreement (median cos) |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for h, w, c in ((320, 320, 8), (640, 368, 15)):
        yy, xx = np.mgrid[:h, :w]
        obj = (((yy - h / 2) / (0.35 * h)) ** 2 + ((xx - w / 2) / (0.3 * w)) ** 2 < 1) * (1 + 0.3 * np.sin(xx / 9))
        maps = birdcage(c, h, w)
        k = fft2c(torch.from_numpy((maps * obj).astype(np.complex64))).numpy()
        for acc in (4, 8):
            m = make_mask(w, acc, None, "random", np.random.default_rng(0)).astype(np.float32)
            for backend in ("bart", "sigpy") if available() else ("sigpy",):
                times = []
                for _ in range(a.repeats):
                    t = time.perf_counter()
                    est = espirit_maps(k * m, m, backend=backend)
                    times.append(time.perf_counter() - t)
                print(f"| {h} x {w} | {c} | {acc}x | {acs_width(m)} | {backend} | {statistics.median(times):.2f} | "
                      f"{map_agreement(est, maps, obj > 0):.5f} |", flush=True)


if __name__ == "__main__":
    main()
