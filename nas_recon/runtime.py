"""Process-wide CPU settings every command applies at start (measured in BENCHMARKS.md).

- glibc malloc: by default every freed buffer above the (dynamic) mmap threshold goes back to the OS and is
  page-faulted in again on the next step, so system time exceeded user time in training. Raising the mmap
  and trim thresholds keeps the freed buffers in the heap for reuse.
- denormal floats: bias-free stacks produce tiny activations and gradients; flushing denormals to zero
  avoids the CPU's slow path for them (3x on a searched-net training step under PyTorch's default init).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import torch

M_TRIM_THRESHOLD = -1  # glibc mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MALLOC_THRESHOLD = 1 << 30  # 1 GiB: tensors below it are served from (and returned to) the heap
APPLIED: dict[str, int | bool] = {}


def tune_malloc(threshold: int = MALLOC_THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds (no-op elsewhere or when the user set MALLOC_* themselves)."""
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc
        return False
    if ok:
        APPLIED.update({"mmap_threshold": threshold, "trim_threshold": threshold})
    return ok


def configure() -> dict[str, int | bool]:
    """Apply the allocator and denormal settings once per process; return what was applied."""
    if "configured" not in APPLIED:
        tune_malloc()
        APPLIED["flush_denormal"] = bool(torch.set_flush_denormal(True))
        APPLIED["configured"] = True
    return dict(APPLIED)
