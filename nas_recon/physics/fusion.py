"""k-space fusion (data consistency) between cascades."""

from __future__ import annotations

import math

import torch
from torch import nn

from nas_recon.physics.fft import chan_to_complex, complex_to_chan, fft2c, ifft2c

CG_ITERATIONS = 10  # conjugate-gradient steps of the multi-coil data consistency (MoDL uses 10)


def fuse(x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor, lam: float | None,
         maps: torch.Tensor | None = None) -> torch.Tensor:
    """Data consistency on 2-channel images: sampled k-space points pulled towards the measurement `k0`.

    x: [B, 2, H, W] image; k0: [B, 2, H, W] measured k-space (zero where unsampled);
    mask: [B, 1, 1, W] or [B, 1, H, W], 1 where sampled; lam None = hard replacement.
    Multi-coil: k0 and maps [B, coils, 2, H, W] (the SENSE operator; see KSpaceFusion).
    """
    layer = KSpaceFusion() if lam is None else KSpaceFusion(float(lam))
    return layer(x, k0, mask, maps)


class KSpaceFusion(nn.Module):
    """k_out = (1 - m) k + m (k + lam k0) / (1 + lam); lam = inf (default) replaces sampled lines.

    With `learnable`, lam = softplus(raw) is a trainable parameter started at `lam` (1 if inf).
    Multi-coil (maps given): the same two rules through the SENSE operator A = M F S: the hard rule replaces
    each coil's sampled points and combines, x = S^H F^H ((1 - m) F S x + m k0) (a projection when
    sum_c |S_c|^2 = 1, as ESPIRiT's maps are); the soft rule solves argmin ||x - z||^2 + lam ||A x - k0||^2,
    i.e. (A^H A + I / lam) x = A^H k0 + z / lam, by `cg_iterations` of conjugate gradients (MoDL's DC layer;
    with one coil and unit maps it is the closed form above).
    """

    def __init__(self, lam: float = math.inf, learnable: bool = False, cg_iterations: int = CG_ITERATIONS) -> None:
        super().__init__()
        self.learnable = learnable
        self.cg_iterations = cg_iterations
        self.hard = math.isinf(lam) and not learnable
        if learnable:
            start = 1.0 if math.isinf(lam) else float(lam)
            self.raw_lam = nn.Parameter(torch.tensor(math.log(math.expm1(start))))
        else:
            self.register_buffer("raw_lam", torch.tensor(0.0 if math.isinf(lam) else float(lam)), persistent=False)

    def current_lam(self) -> torch.Tensor:
        """Lambda as a tensor (meaningless when `hard`)."""
        if self.learnable:
            return nn.functional.softplus(self.raw_lam)
        return self.raw_lam

    def forward(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor,
                maps: torch.Tensor | None = None) -> torch.Tensor:
        """Fuse image `x` with measured k-space `k0` on `mask`, always in float32/complex64.

        Under autocast the networks hand over bfloat16/float16 images, which complex tensors and FFTs reject
        (and whose 8-bit mantissa would round the measured k-space); the fusion runs with autocast off and
        returns float32, which the next conv casts down again.
        """
        if torch.jit.is_scripting():  # TorchScript exports run in float32 without autocast (single-coil)
            return self._fuse(x.float(), k0.float(), mask.float())
        return self._fuse_eager(x, k0, mask, maps)

    @torch.jit.unused
    def _fuse_eager(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor,
                    maps: torch.Tensor | None) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            if maps is not None and maps.numel() > 0:
                return self._fuse_coils(x.float(), k0.float(), mask.float(), maps.float())
            return self._fuse(x.float(), k0.float(), mask.float())

    @torch.jit.unused
    def _fuse_coils(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        from nas_recon.physics.sense import coil_consistency, sense_dc

        z, k0c, s = chan_to_complex(x), chan_to_complex(k0), chan_to_complex(maps)
        m = (mask[:, 0] if mask.dim() == 4 else mask).unsqueeze(1)  # [B, 1, 1|H, W] over the coils
        if self.hard:
            out = (s.conj() * coil_consistency(s * z.unsqueeze(1), k0c, m)).sum(1)
        else:
            out = sense_dc(z, k0c, s, m, 1.0 / self.current_lam(), self.cg_iterations)
        return complex_to_chan(out)

    @torch.jit.unused
    def coil_output(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """A multi-coil network's output from its last fused image x: the RSS of the data-consistent coil images
        (each coil's k-space F S_c x with its measured points fused in by this layer's rule, as single-coil) with
        x's phase. The RSS, fastMRI's multi-coil target, keeps what the measurements hold where the maps are zero
        (ESPIRiT's maps vanish outside the object; the target's background does not)."""
        from nas_recon.physics.coils import phase
        from nas_recon.physics.sense import coil_consistency

        with torch.autocast(x.device.type, enabled=False):
            z, k0c, s = chan_to_complex(x.float()), chan_to_complex(k0.float()), chan_to_complex(maps.float())
            m = (mask[:, 0] if mask.dim() == 4 else mask).unsqueeze(1).float()
            w = 1.0 if self.hard else self.current_lam() / (1 + self.current_lam())
            c = coil_consistency(s * z.unsqueeze(1), k0c, m, w)
            mag = (c.real ** 2 + c.imag ** 2).sum(1).add(1e-24).sqrt()  # finite gradient at 0
            return complex_to_chan(mag * phase(z))

    def blend(self, k: torch.Tensor, k0: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """The fusion rule on k-space `k`, complex or as [re, im] channels alike (the rule is real-linear): the
        FFT path and the ONNX export's DFT matrices (nas_recon.evaluate.export) share it."""
        if self.hard:
            return (1 - m) * k + m * k0
        lam = self.current_lam()
        return (1 - m) * k + m * (k + lam * k0) / (1 + lam)

    def _fuse(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[:, 0] if mask.dim() == 4 else mask
        k_out = self.blend(fft2c(chan_to_complex(x)), chan_to_complex(k0), m.to(x.dtype))
        return complex_to_chan(ifft2c(k_out))
