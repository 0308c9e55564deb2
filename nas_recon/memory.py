"""A memory estimate checked before a run builds anything, so an impossible setting fails in one line."""

from __future__ import annotations

import os

import torch

from nas_recon.errors import ConfigError

# bytes per input pixel of one training step, measured at 320 x 320 (BENCHMARKS.md, bench/search_step.py):
# the DARTS supernet peaks at ~17 GB for one 320 x 320 slice, a derived network at ~3.5 GB
SUPERNET_BYTES_PER_PIXEL = 170_000
NETWORK_BYTES_PER_PIXEL = 35_000


def device_memory(device: torch.device) -> int | None:
    """Total memory of the device (physical RAM for the CPU), or None when unknown."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(what: str, batch: int, height: int, width: int, bytes_per_pixel: int, device: torch.device,
               hint: str) -> int:
    """Refuse a step whose estimated memory exceeds the device's; return the estimate in bytes."""
    need = batch * height * width * bytes_per_pixel
    have = device_memory(device)
    if have is not None and need > have:
        raise ConfigError(f"{what}: a training step of batch {batch} at {height} x {width} needs about "
                          f"{need / 2**30:.0f} GiB (estimate), the {device.type} has {have / 2**30:.0f} GiB; {hint}")
    return need


def estimated_params(spec) -> tuple[int, int]:
    """(parameters, full-resolution width = the first conv's channels) of the network a ModelSpec builds.

    From one cascade (and one cell) built on the meta device, scaled: no memory taken, a second at the limits.
    """
    from dataclasses import replace

    from torch import nn

    from nas_recon.models.registry import build_model

    repeat = spec.cascades
    small = replace(spec, cascades=1)
    if spec.genotype is not None:
        repeat *= int(spec.genotype.get("cells", 1))
        small = replace(small, genotype={**spec.genotype, "cascades": 1, "cells": 1})
    with torch.device("meta"):
        model = build_model(small)
        if spec.genotype is None and sum(p.numel() for p in build_model(replace(spec, cascades=2)).parameters()) \
                == sum(p.numel() for p in model.parameters()):
            repeat = 1  # a family of fixed depth (U-Net, VarNet): spec.cascades does not apply
    params = sum(p.numel() for p in model.parameters())
    first = next((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 2)
    return params * repeat, first


def check_model_fits(what: str, spec, batch: int, height: int, width: int, device: torch.device, train: bool,
                     hint: str) -> int:
    """Refuse a model whose weights (and, training, Adam's state and gradients) plus one step's activations exceed
    the device's memory; return the estimate in bytes."""
    params, width_full = estimated_params(spec)
    weights = params * 4 * (4 if train else 1)  # weights, gradients and Adam's two moments
    # sixteen live feature maps at full resolution (a U-Net's coarser levels add less than its first level)
    activations = batch * height * width * width_full * 4 * 16
    need = weights + activations
    have = device_memory(device)
    if have is not None and need > have:
        raise ConfigError(f"{what}: {spec.name} with {params:,} parameters at {height} x {width} needs about "
                          f"{need / 2**30:,.1f} GiB (estimate), the {device.type} has {have / 2**30:.1f} GiB; {hint}")
    return need
