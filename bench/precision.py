"""Benchmark (not a test): bf16-mixed against fp32 training and inference throughput on this machine.

For dccnn-3, a paper_a cell network (search_spaces/examples/paper_a_example.json) and the U-Net: training
steps (forward, backward, Adam) and inference at 64 x 64, batch 4 (the CPU recipes' crops), and the U-Net also
at 320 x 320, batch 1 (its whole-image protocol). The two precisions alternate, `--rounds` times each, in one
process; the table gives the median images/s and the ratio bf16 / fp32 of each.

    python bench/precision.py [--rounds 3] [--steps 10] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics

from gpu import throughput

from nas_recon.device import resolve_device
from nas_recon.genotype import load_genotype
from nas_recon.models.registry import ModelSpec, spec_for_genotype
from nas_recon.paths import shipped_dir
from nas_recon.runtime import configure


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    configure()
    device = resolve_device(a.device)
    cell = spec_for_genotype(load_genotype(shipped_dir("search_spaces") / "examples" / "paper_a_example.json"))
    cases = [("dccnn-3", ModelSpec("dccnn-3"), 64, 4), ("cell (paper_a example)", cell, 64, 4),
             ("unet", ModelSpec("unet"), 64, 4), ("unet", ModelSpec("unet"), 320, 1)]
    rows = []
    for label, spec, size, batch in cases:
        got: dict[str, dict[str, list[float]]] = {"32": {}, "bf16-mixed": {}}
        for _ in range(a.rounds):
            for precision in ("32", "bf16-mixed"):
                r = throughput(spec, size, batch, device, a.steps, precision)
                for k in ("train_img_s", "infer_img_s"):
                    got[precision].setdefault(k, []).append(r[k])
        med = {pr: {k: statistics.median(v) for k, v in d.items()} for pr, d in got.items()}
        rows.append({"model": label, "size": size, "batch": batch, **{f"{k}_{pr}": v for pr, d in med.items()
                                                                       for k, v in d.items()}})
        print(f"| {label} | {size} x {size}, batch {batch} | {med['32']['train_img_s']:.1f} | "
              f"{med['bf16-mixed']['train_img_s']:.1f} | "
              f"{med['bf16-mixed']['train_img_s'] / med['32']['train_img_s']:.2f} | {med['32']['infer_img_s']:.1f} | "
              f"{med['bf16-mixed']['infer_img_s']:.1f} | "
              f"{med['bf16-mixed']['infer_img_s'] / med['32']['infer_img_s']:.2f} |", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
