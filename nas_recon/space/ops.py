"""Cell operations, registered by name. No bias and no normalisation anywhere (phase must be kept).

A space with `bias = true` gets its biases from nas_recon.models.init.add_conv_biases, not from these factories.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

OpFactory = Callable[[int], nn.Module]
OPS: dict[str, OpFactory] = {}


def register_op(name: str) -> Callable[[OpFactory], OpFactory]:
    """Decorator: register `factory(channels) -> nn.Module` under `name`."""

    def deco(factory: OpFactory) -> OpFactory:
        if name in OPS:
            raise ValueError(f"op '{name}' is already registered")
        OPS[name] = factory
        return factory

    return deco


def build_op(name: str, channels: int) -> nn.Module:
    """Instantiate the registered op `name` for `channels` channels."""
    try:
        return OPS[name](channels)
    except KeyError:
        raise KeyError(f"unknown op '{name}', expected one of {', '.join(sorted(OPS))}") from None


class Zero(nn.Module):
    """The `none` op: a zero output of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def separable(channels: int, kernel: tuple[int, int], dilation: int = 1) -> nn.Sequential:
    """ReLU -> depthwise kxk (dilated, size-preserving) -> pointwise 1x1."""
    pad = (dilation * (kernel[0] - 1) // 2, dilation * (kernel[1] - 1) // 2)
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(channels, channels, kernel, padding=pad, dilation=dilation, groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
    )


@register_op("sep_conv_3x3")
def sep_conv_3x3(c: int) -> nn.Module:
    """ReLU -> depthwise 3x3 -> pointwise 1x1."""
    return separable(c, (3, 3))


@register_op("dil_2_conv_3x3")
def dil_2_conv_3x3(c: int) -> nn.Module:
    """ReLU -> depthwise 3x3 dilation 2 -> pointwise 1x1."""
    return separable(c, (3, 3), 2)


@register_op("dil_3_conv_3x3")
def dil_3_conv_3x3(c: int) -> nn.Module:
    """ReLU -> depthwise 3x3 dilation 3 -> pointwise 1x1."""
    return separable(c, (3, 3), 3)


@register_op("sep_conv_5x5")
def sep_conv_5x5(c: int) -> nn.Module:
    """ReLU -> depthwise 5x5 -> pointwise 1x1."""
    return separable(c, (5, 5))


@register_op("dil_4_conv_3x3")
def dil_4_conv_3x3(c: int) -> nn.Module:
    """ReLU -> depthwise 3x3 dilation 4 -> pointwise 1x1."""
    return separable(c, (3, 3), 4)


def dense(channels: int, dilation: int = 1) -> nn.Sequential:
    """ReLU -> dense 3x3 C -> C (dilated, size-preserving): 7x the MACs of a separable 3x3 at C = 32."""
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
    )


@register_op("conv_3x3")
def conv_3x3(c: int) -> nn.Module:
    """ReLU -> dense 3x3."""
    return dense(c)


@register_op("dil_2_dense_3x3")
def dil_2_dense_3x3(c: int) -> nn.Module:
    """ReLU -> dense 3x3 dilation 2."""
    return dense(c, 2)


@register_op("conv_9x1_1x9")
def conv_9x1_1x9(c: int) -> nn.Module:
    """ReLU -> depthwise 9x1 -> depthwise 1x9 -> pointwise 1x1."""
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, (9, 1), padding=(4, 0), groups=c, bias=False),
        nn.Conv2d(c, c, (1, 9), padding=(0, 4), groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
    )


@register_op("skip_connect")
def skip_connect(c: int) -> nn.Module:
    """Identity."""
    return nn.Identity()


@register_op("none")
def none_op(c: int) -> nn.Module:
    """Zero op (only inside the supernet relaxation; never in a derived cell)."""
    return Zero()
