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
