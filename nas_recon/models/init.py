"""Initialisation of the bias-free, normalisation-free cell networks (searched, random and supernet alike).

PyTorch's default conv init (variance 1/(3 fan_in)) shrinks the signal by about 3x per conv and 2x per ReLU,
so a stack of stem, 1x1 preprocessing and separable ops starts with a residual branch ~1e-3 of its input and
barely moves under Adam. The rule here keeps every module's gain near 1 and starts each reconstruction
module near the identity (Fixup / SkipInit style), without adding a parameter:
- a conv that reads a ReLU output: He normal, variance 2 / fan_in;
- any other conv (stem, pointwise after a depthwise conv): LeCun normal, variance 1 / fan_in;
- the output conv of each module (concat of nodes -> 2 channels): variance out_gain^2 / fan_in.

Adam moves every weight by about lr per step whatever its size, so a depthwise 3x3 conv (fan_in 9, std 0.47)
changes 8x more slowly, relative to its size, than a dense 3x3 conv on 32 channels (fan_in 288, std 0.06).
`layer_lr_groups` gives each conv an Adam learning rate proportional to its init std (the equalized learning
rate of Karras et al. 2018, written as per-layer learning rates so that weights and checkpoints are unchanged).
"""

from __future__ import annotations

import math

import torch
from torch import nn

REF_STD = 1.0 / math.sqrt(9 * 32)  # a dense 3x3 conv on 32 channels: the baselines' layer, whose lr stays lr
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


def add_conv_biases(module: nn.Module) -> None:
    """Give every bias-free conv of `module` a zero-initialised trainable bias (`cell_bias`, outside SPEC's
    contract)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and m.bias is None:
            m.bias = nn.Parameter(torch.zeros(m.out_channels, dtype=m.weight.dtype, device=m.weight.device))


def nominal_std(conv: nn.Conv2d, relu_fed: bool) -> float:
    """The init std of the rule above (the output conv counts with its LeCun scale, not its zero start)."""
    return (math.sqrt(2.0) if relu_fed else 1.0) / math.sqrt(conv.weight[0].numel())


def layer_lr_groups(model: nn.Module, lr: float) -> list[dict]:
    """Adam parameter groups: each conv at lr x nominal_std / REF_STD, everything else at lr."""
    fed = relu_fed_convs(model)
    groups, seen = [], set()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            params = [p for p in m.parameters(recurse=False) if p.requires_grad]
            seen.update(id(p) for p in params)
            groups.append({"params": params, "lr": lr * nominal_std(m, id(m) in fed) / REF_STD})
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
    return groups + ([{"params": rest, "lr": lr}] if rest else [])
