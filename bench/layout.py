"""Benchmark (not a test): channels_last against NCHW weights for each model, training and inference, on this machine.

Each model at the shape its quick recipe trains it (64 x 64 crops, batch 4; the U-Net whole 320 x 320 images,
batch 1) and at inference on whole 320 x 320 slices (what validation, evaluation and the report time). The two
layouts alternate, `--rounds` times each, in one process; the table gives median images/s and the ratio
channels_last / NCHW (above 1: channels_last is faster). `place()` uses channels_last unless a model class
declares another `memory_format`.

    python bench/layout.py [--rounds 3] [--steps 8]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from gpu import throughput

from nas_recon.genotype import load_genotype
from nas_recon.models.registry import ModelSpec, spec_for_genotype
from nas_recon.paths import shipped_dir
from nas_recon.runtime import configure

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    a = p.parse_args()
    configure()
    device = torch.device("cpu")
    cell = spec_for_genotype(load_genotype(shipped_dir("search_spaces") / "examples" / "paper_a_example.json"))
    cases = [("cell (paper_a example)", cell, 64, 4), ("dccnn-3", ModelSpec("dccnn-3"), 64, 4),
             ("modl-3", ModelSpec("modl-3"), 64, 4), ("rdn-3", ModelSpec("rdn-3"), 64, 4),
             ("unet", ModelSpec("unet"), 320, 1)]
    print("| model | training shape | train img/s NCHW | channels_last | ratio | infer 320 img/s NCHW | "
          "channels_last | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows = []
    for label, spec, size, batch in cases:
        got: dict[str, dict[str, list[float]]] = {k: {"train": [], "infer": []} for k in LAYOUTS}
        for _ in range(a.rounds):
            for name, fmt in LAYOUTS.items():
                got[name]["train"].append(throughput(spec, size, batch, device, a.steps, memory_format=fmt)
                                          ["train_img_s"])
                got[name]["infer"].append(throughput(spec, 320, 1, device, max(2, a.steps // 2),
                                                     memory_format=fmt)["infer_img_s"])
        med = {n: {k: statistics.median(v) for k, v in d.items()} for n, d in got.items()}
        rows.append({"model": label, "size": size, "batch": batch, **med})
        n, c = med["nchw"], med["channels_last"]
        print(f"| {label} | {size} x {size}, batch {batch} | {n['train']:.2f} | {c['train']:.2f} | "
              f"{c['train'] / n['train']:.2f} | {n['infer']:.2f} | {c['infer']:.2f} | {c['infer'] / n['infer']:.2f} |",
              flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
