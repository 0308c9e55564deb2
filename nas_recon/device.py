"""Device choice: auto, cpu or cuda."""

from __future__ import annotations

import torch

from nas_recon.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """torch.device for 'auto' (cuda when available), 'cpu' or 'cuda'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device: unknown '{name}', expected auto, cpu or cuda")
    return torch.device(name)


def place(model: torch.nn.Module, device: torch.device,
          memory_format: torch.memory_format | None = None) -> torch.nn.Module:
    """Move a model to `device` with its 4-D weights in channels_last (oneDNN's and cuDNN's fast layout), or in
    `memory_format` when given (bench/layout.py compares them).

    Measured on the 2-core CPU (BENCHMARKS.md): 1.1-1.7x faster training steps for the cascades; the U-Net at
    320 x 320 runs 1.3x faster in NCHW, but kept channels_last since its quick-budget PSNR came out lower in NCHW
    on each of 3 seeds. Outputs equal the NCHW ones to float rounding (tests/test_runtime.py).
    """
    return model.to(device=device, memory_format=memory_format or torch.channels_last)
