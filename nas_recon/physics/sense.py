"""The SENSE operator (coil sensitivities, FFT, mask) and MoDL's data consistency by conjugate gradients.

Pure functions on complex tensors: images [B, H, W], coil k-space [B, C, H, W], maps [B, C, H, W], masks
broadcastable to [B, 1, H, W] (e.g. [B, 1, 1, W]). One coil with unit maps is the single-coil case.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from nas_recon.physics.fft import fft2c, ifft2c


def sense_forward(x: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A x = M F S x: coil images, their k-space, the sampled points."""
    return mask * fft2c(maps * x.unsqueeze(-3))


def sense_adjoint(k: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A^H k = sum_c conj(S_c) F^H M k_c."""
    return (maps.conj() * ifft2c(mask * k)).sum(dim=-3)


def column_projection(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """F^H M F x (centered F) for a column mask `mask` [W] (or [..., 1, W]): the image of x's sampled columns.

    The mask is constant along H, so the FFTs along H cancel; and the centring shifts of F^H and F cancel around
    the diagonal M, which becomes ifftshift(M): two 1-D FFTs along W, no shifts of x (a quarter of the work)."""
    return torch.fft.ifft(torch.fft.ifftshift(mask, dim=-1) * torch.fft.fft(x, dim=-1, norm="ortho"), dim=-1,
                          norm="ortho")


def coil_consistency(coils: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor, w: float | torch.Tensor = 1.0
                     ) -> torch.Tensor:
    """Coil images whose k-space F c has its sampled points moved to the measurement: F^H ((1 - w M) F c + w M k0)
    (w = 1: replaced; w = lam / (1 + lam): the soft rule). mask [..., 1, W] (columns) or [..., H, W]."""
    if mask.shape[-2] != 1:  # a 2-D mask: the full 2-D transforms
        k = fft2c(coils)
        return ifft2c(k + w * mask * (k0 - k))
    return coils + w * (ifft2c(mask * k0) - column_projection(coils, mask))


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """<a, b> = sum conj(a) b per batch item (real part; the normal operators here are Hermitian)."""
    return (a.conj() * b).real.flatten(1).sum(dim=1)


def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, x0: torch.Tensor,
                       iterations: int = 10, tol: float = 1e-6) -> torch.Tensor:
    """Solve apply(x) = b for a Hermitian positive definite operator, per batch item, from x0."""
    x = x0
    r = b - apply(x)
    p = r
    rs = dot(r, r)
    stop = tol**2 * dot(b, b)
    for _ in range(iterations):
        if bool((rs <= stop).all()):
            break
        ap = apply(p)
        alpha = (rs / dot(p, ap).clamp_min(1e-30)).view(-1, *([1] * (b.dim() - 1)))
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = dot(r, r)
        p = r + (rs_new / rs.clamp_min(1e-30)).view_as(alpha) * p
        rs = rs_new
    return x


def sense_dc(z: torch.Tensor, k0: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor, lam: float,
             iterations: int = 10) -> torch.Tensor:
    """MoDL's data consistency: argmin_x ||A x - k0||^2 + lam ||x - z||^2, i.e. (A^H A + lam I) x = A^H k0 + lam z.

    With one coil and unit maps this is the closed-form k-space fusion with weight 1/lam on the measurement.
    """
    def normal(x: torch.Tensor) -> torch.Tensor:  # A^H A x + lam x; column masks: S^H (F^H M F) S x by 1-D FFTs
        if mask.shape[-2] == 1:
            return (maps.conj() * column_projection(maps * x.unsqueeze(-3), mask)).sum(dim=-3) + lam * x
        return sense_adjoint(sense_forward(x, maps, mask), maps, mask) + lam * x

    return conjugate_gradient(normal, sense_adjoint(k0, maps, mask) + lam * z, z, iterations)
