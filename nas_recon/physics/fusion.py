"""k-space fusion (data consistency) between cascades."""

from __future__ import annotations

import math

import torch
from torch import nn

from nas_recon.physics.fft import chan_to_complex, complex_to_chan, fft2c, ifft2c


def fuse(x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor, lam: float | torch.Tensor | None) -> torch.Tensor:
    """Data consistency on 2-channel images: sampled k-space points pulled towards the measurement `k0`.

    x: [B, 2, H, W] image; k0: [B, 2, H, W] measured k-space (zero where unsampled);
    mask: broadcastable to [B, 1, H, W], 1 where sampled; lam None = hard replacement.
    """
    k = fft2c(chan_to_complex(x))
    k0c = chan_to_complex(k0)
    m = mask.squeeze(-3) if mask.dim() == 4 else mask
    m = m.to(k.real.dtype)
    if lam is None:
        k_out = (1 - m) * k + m * k0c
    else:
        k_out = (1 - m) * k + m * (k + lam * k0c) / (1 + lam)
    return complex_to_chan(ifft2c(k_out))


class KSpaceFusion(nn.Module):
    """k-space fusion layer: hard replacement (lam = inf, default), soft with lam, or learnable lam."""

    def __init__(self, lam: float = math.inf, learnable: bool = False) -> None:
        super().__init__()
        self.hard = math.isinf(lam) and not learnable
        if learnable:
            start = 1.0 if math.isinf(lam) else float(lam)
            # softplus-parametrised so lam stays positive while it is learnt
            self.raw_lam = nn.Parameter(torch.tensor(math.log(math.expm1(start))))
            self.fixed_lam = None
        else:
            self.raw_lam = None
            self.fixed_lam = None if math.isinf(lam) else float(lam)

    @property
    def lam(self) -> float | torch.Tensor | None:
        """Current lambda (None for hard replacement)."""
        if self.raw_lam is not None:
            return nn.functional.softplus(self.raw_lam)
        return self.fixed_lam

    def forward(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fuse image `x` with measured k-space `k0` on `mask`."""
        return fuse(x, k0, mask, self.lam)
