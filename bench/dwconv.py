"""Benchmark (not a test): formulations of the (dilated) depthwise 3x3 conv, forward + backward on the CPU.

Per dilation 1/2/3 at 64 x 64 (batch 4) and 320 x 320 (batch 1), 32 channels, milliseconds per forward +
backward (input and weight gradients), median of 10 after 2 warm-ups:
  dw       nn.Conv2d(groups=C, dilation=d), NCHW (the reference)
  dw_cl    the same in channels_last
  poly     polyphase (space-to-batch): the d x d phases of the zero-padded input folded into the batch, an
           undilated depthwise conv, unfolded again; mathematically identical (checked: max error printed)
  dense    a dense 3x3 conv 32->32 (32x the MACs of a depthwise one), for scale
Usage: python bench/dwconv.py
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from nas_recon import runtime


def polyphase(x: torch.Tensor, w: torch.Tensor, d: int) -> torch.Tensor:
    """Dilated depthwise 3x3 conv ('same' padding d) as an undilated one on the d x d polyphase components."""
    b, c, h, wd = x.shape
    z = F.pad(x, (0, (-wd) % d, 0, (-h) % d))
    hp, wp = z.shape[-2] // d, z.shape[-1] // d
    z = z.view(b, c, hp, d, wp, d).permute(0, 3, 5, 1, 2, 4).reshape(b * d * d, c, hp, wp)
    y = F.conv2d(z, w, padding=1, groups=c)
    y = y.view(b, d, d, c, hp, wp).permute(0, 3, 4, 1, 5, 2).reshape(b, c, hp * d, wp * d)
    return y[..., :h, :wd]


def ms(fn, n: int = 10) -> float:
    for _ in range(2):
        fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def main() -> None:
    runtime.configure()
    torch.manual_seed(0)
    c = 32
    print(f"{'size':>4s} {'dil':>3s} {'dw':>7s} {'dw_cl':>7s} {'poly':>7s} {'dense':>7s}  max |poly - dw|")
    for size, batch in ((64, 4), (320, 1)):
        x = torch.randn(batch, c, size, size, requires_grad=True)
        xl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
        dense = nn.Conv2d(c, c, 3, padding=1, bias=False)
        for d in (1, 2, 3):
            dw = nn.Conv2d(c, c, 3, padding=d, dilation=d, groups=c, bias=False)
            dwl = nn.Conv2d(c, c, 3, padding=d, dilation=d, groups=c, bias=False).to(memory_format=torch.channels_last)
            row = {"dw": ms(lambda m=dw, a=x: m(a).sum().backward()),
                   "dw_cl": ms(lambda m=dwl, a=xl: m(a).sum().backward()),
                   "poly": ms(lambda m=dw, d=d, a=x: polyphase(a, m.weight, d).sum().backward()),
                   "dense": ms(lambda m=dense, a=x: m(a).sum().backward())}
            with torch.no_grad():
                err = float((polyphase(x, dw.weight, d) - dw(x)).abs().max())
            print(f"{size:4d} {d:3d} " + " ".join(f"{v:7.2f}" for v in row.values()) + f"  {err:.1e}", flush=True)


if __name__ == "__main__":
    main()
