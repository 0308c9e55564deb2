"""Initialisation of the bias-free, normalisation-free cell networks (searched, random and supernet alike).

PyTorch's default conv init (variance 1/(3 fan_in)) shrinks the signal by about 3x per conv and 2x per ReLU,
so a stack of stem, 1x1 preprocessing and separable ops starts with a residual branch ~1e-3 of its input and
barely moves under Adam. The rule here keeps every module's gain near 1 and starts each reconstruction
module near the identity (Fixup / SkipInit style), without adding a parameter:
- a conv that reads a ReLU output: He normal, variance 2 / fan_in;
- any other conv (stem, pointwise after a depthwise conv): LeCun normal, variance 1 / fan_in;
- the output conv of each module (concat of nodes -> 2 channels): variance out_gain^2 / fan_in.
"""

from __future__ import annotations

import math

import torch
from torch import nn

OUT_GAIN = 0.0  # each module starts as the identity (SkipInit/Fixup); 0.1 and 0 trained alike, 0.1 hurt at init


def relu_fed_convs(module: nn.Module) -> set[int]:
    """ids of the convs that directly follow an nn.ReLU inside an nn.Sequential."""
    fed: set[int] = set()
    for m in module.modules():
        if isinstance(m, nn.Sequential):
            prev: nn.Module | None = None
            for child in m:
                if isinstance(child, nn.Conv2d) and isinstance(prev, nn.ReLU):
                    fed.add(id(child))
                prev = child
    return fed


@torch.no_grad()
def scale_init_(conv: nn.Conv2d, gain: float) -> None:
    """Normal init with variance gain^2 / fan_in (fan_in = in_channels / groups * kernel area)."""
    fan_in = conv.weight[0].numel()
    conv.weight.normal_(0.0, gain / math.sqrt(fan_in))
    if conv.bias is not None:
        conv.bias.zero_()


def init_cell_network(body: nn.Module, out: nn.Conv2d, out_gain: float | None = None) -> None:
    """Apply the rule above to every conv of `body`, then to its output conv `out`."""
    fed = relu_fed_convs(body)
    for m in body.modules():
        if isinstance(m, nn.Conv2d) and m is not out:
            scale_init_(m, math.sqrt(2.0) if id(m) in fed else 1.0)
    scale_init_(out, OUT_GAIN if out_gain is None else out_gain)
