"""Cascades of [reconstruction module] -> [k-space fusion], shared by the searched net and baselines."""

from __future__ import annotations

import math

import torch
from torch import nn

from nas_recon.physics.fusion import CG_ITERATIONS, KSpaceFusion


class CascadeNet(nn.Module):
    """x <- fusion(body_c(x), k0, mask) for each cascade c; bodies may be one shared module."""

    def __init__(self, bodies: list[nn.Module], lam: float = math.inf, learnable_lam: bool = False,
                 cg_iterations: int = CG_ITERATIONS) -> None:
        super().__init__()
        self.bodies = nn.ModuleList(bodies)
        self.fusions = nn.ModuleList(KSpaceFusion(lam, learnable_lam, cg_iterations) for _ in bodies)

    def forward(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor,
                maps: torch.Tensor | None = None) -> torch.Tensor:
        """x: zero-filled [B, 2, H, W]; k0: measured k-space [B, 2, H, W]; mask: [B, 1, 1, W].

        Multi-coil: x = A^H k0, k0 and maps [B, coils, 2, H, W]; the bodies see the coil-combined image.
        """
        if torch.jit.is_scripting():  # TorchScript exports are single-coil
            for body, fusion in zip(self.bodies, self.fusions, strict=True):
                x = fusion(body(x), k0, mask)
            return x
        return self._forward_eager(x, k0, mask, maps)

    @torch.jit.unused
    def _forward_eager(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor,
                       maps: torch.Tensor | None) -> torch.Tensor:
        for body, fusion in zip(self.bodies, self.fusions, strict=True):
            x = fusion(body(x), k0, mask, maps)
        if maps is not None and maps.numel() > 0:  # the RSS of the data-consistent coil images
            return self.fusions[-1].coil_output(x, k0, mask, maps)
        return x
