"""Benchmark (not a test): supernet training-step peak memory and time per cell implementation (issue 11).

NNI's DifferentiableMixedCell (stack + zeros + weighted product), LeanMixedCell (running weighted sum, the
default), and PC-DARTS' PartialChannelCell (1/4 of the channels through the ops). Each runs in its own process:
the peak resident memory added by one forward + backward step (ru_maxrss after the step minus after a
forward-free warm-up) and the median time of 3 steps, space paper_a, batch 4, crops of --crop.

Usage: python bench/supernet_memory.py [--crop 64] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = (("nni", "darts", False), ("lean", "darts", True), ("pcdarts", "pcdarts", True))


def child(name: str, crop: int, batch: int) -> None:
    import torch

    from nas_recon import runtime
    from nas_recon.search.supernet import build_supernet, make_strategy
    from nas_recon.space import load_space

    runtime.configure()
    strategy, lean = next((s, lean) for n, s, lean in VARIANTS if n == name)
    torch.manual_seed(0)
    net = build_supernet(load_space("paper_a"), make_strategy(strategy, 3e-4, None, lean=lean),
                         partial=strategy == "pcdarts").to(memory_format=torch.channels_last)
    x, k = torch.randn(batch, 2, crop, crop), torch.randn(batch, 2, crop, crop)
    mask = (torch.rand(1, 1, 1, crop) < 0.25).float()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(3):
        t = time.perf_counter()
        net(x, k, mask).square().mean().backward()
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"name": name, "step_mb": (peak - base) / 1024, "peak_mb": peak / 1024,
                      "s_per_step": statistics.median(times)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child, a.crop, a.batch)
        return
    rows = []
    for name, _, _ in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--child", name, "--crop", str(a.crop), "--batch",
                              str(a.batch)], capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    ref = rows[0]
    print(f"paper_a supernet, batch {a.batch}, {a.crop} x {a.crop} crops: one forward + backward step")
    print(f"{'cell':10s} {'step MB':>9s} {'x NNI':>6s} {'peak RSS MB':>12s} {'s/step':>7s} {'x NNI':>6s}")
    for r in rows:
        print(f"{r['name']:10s} {r['step_mb']:9.0f} {r['step_mb'] / ref['step_mb']:6.2f} {r['peak_mb']:12.0f} "
              f"{r['s_per_step']:7.3f} {r['s_per_step'] / ref['s_per_step']:6.2f}")


if __name__ == "__main__":
    main()
