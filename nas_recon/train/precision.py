"""Mixed precision for training: autocast for the networks, float32 for FFTs, fusion and losses."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from nas_recon.errors import ConfigError

PRECISIONS = ("32", "bf16-mixed", "16-mixed")


def check_precision(precision: str, device_type: str) -> None:
    """Refuse a precision the device cannot train in."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision: unknown '{precision}', expected one of {', '.join(PRECISIONS)}")
    if precision == "16-mixed" and device_type != "cuda":
        raise ConfigError("--precision: 16-mixed needs a CUDA device (float16 training on the CPU is not "
                          "supported); use bf16-mixed or 32")


def autocast(precision: str, device_type: str) -> AbstractContextManager[Any]:
    """The autocast context of a precision (a no-op for 32)."""
    import torch

    if precision == "32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    return torch.autocast(device_type, dtype=dtype)

