"""E2E-VarNet (Sriram et al. 2020) in fastMRI's layout: a learnt sensitivity U-Net on the centre lines, then
cascades of U-Net refinements in k-space with a learnt soft data-consistency weight.

Written for nas-recon's model interface (`forward(x, k0, mask, maps)` on [B, 2, H, W] complex channels): it
ignores the given `maps` (it learns its own from k0's fully sampled centre), and its output is the RSS of its
final coil images with the phase of `x`, the sensitivity-combined zero-filled image (as the U-Net baseline
carries the zero-filled phase), so that metrics on magnitudes see fastMRI's VarNet output exactly.
Single-coil data is one coil.
"""

from __future__ import annotations

import torch
from torch import nn

from nas_recon.models.baselines import UNet
from nas_recon.physics.coils import phase, rss
from nas_recon.physics.fft import chan_to_complex, complex_to_chan, fft2c, ifft2c


class NormUnet(nn.Module):
    """A U-Net on one complex image (2 channels), its input normalised by its own mean and std (per channel)."""

    def __init__(self, chans: int, pools: int) -> None:
        super().__init__()
        self.unet = UNet(chans, pools, cin=2, cout=2)
        self.multiple = 2 ** pools

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True).clamp_min(1e-11)
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple  # pad to a multiple of 2^pools, as fastMRI does
        y = nn.functional.pad((x - mean) / std, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        y = self.unet.unet(y)[..., ph // 2: ph // 2 + h, pw // 2: pw // 2 + w]
        return y * std + mean


def centre_lines(mask: torch.Tensor) -> torch.Tensor:
    """The fully sampled run of columns through the centre of a [B, 1, 1, W] mask, as a 0/1 mask of that shape."""
    m = mask.reshape(mask.shape[0], -1) > 0
    w = m.shape[1]
    c = w // 2
    idx = torch.arange(w, device=mask.device)
    # first unsampled column left and right of the centre (per batch item)
    left = torch.where(~m & (idx < c), idx, torch.full_like(idx, -1)).amax(dim=1)
    right = torch.where(~m & (idx > c), idx, torch.full_like(idx, w)).amin(dim=1)
    keep = (idx[None] > left[:, None]) & (idx[None] < right[:, None]) & m[:, c:c + 1]
    return keep.to(mask.dtype).view_as(mask)


class SensitivityModel(nn.Module):
    """Coil sensitivities from the centre lines: their coil images through a NormUnet, divided by their RSS."""

    def __init__(self, chans: int, pools: int) -> None:
        super().__init__()
        self.norm_unet = NormUnet(chans, pools)

    def forward(self, k: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """k: complex coil k-space [B, C, H, W]; mask [B, 1, 1, W] -> complex maps [B, C, H, W]."""
        b, c, h, w = k.shape
        low = ifft2c(k * centre_lines(mask))
        est = self.norm_unet(complex_to_chan(low).reshape(b * c, 2, h, w))
        maps = chan_to_complex(est.reshape(b, c, 2, h, w))
        return maps / (maps.abs() ** 2).sum(1, keepdim=True).sqrt().clamp_min(1e-12)


class VarNetBlock(nn.Module):
    """k <- k - dc (m (k - k0)) - F S (unet(S^H F^H k)): one cascade, its soft DC weight learnt (started at 1)."""

    def __init__(self, chans: int, pools: int) -> None:
        super().__init__()
        self.model = NormUnet(chans, pools)
        self.dc_weight = nn.Parameter(torch.ones(1))

    def forward(self, k: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        image = (maps.conj() * ifft2c(k)).sum(1)  # S^H F^H k
        refined = chan_to_complex(self.model(complex_to_chan(image)))
        return k - self.dc_weight * mask * (k - k0) - fft2c(maps * refined.unsqueeze(1))


class VarNet(nn.Module):
    """E2E-VarNet: `cascades` VarNetBlocks of `chans`-channel NormUnets; sensitivity U-Net of `sens_chans`."""

    def __init__(self, cascades: int = 12, chans: int = 18, pools: int = 4, sens_chans: int = 8,
                 sens_pools: int = 4) -> None:
        super().__init__()
        self.sens_net = SensitivityModel(sens_chans, sens_pools)
        self.cascades = nn.ModuleList(VarNetBlock(chans, pools) for _ in range(cascades))

    def forward(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor,
                maps: torch.Tensor | None = None) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):  # complex k-space throughout (the U-Nets in float32)
            x, k0, mask = x.float(), k0.float(), mask.float()
            kc = chan_to_complex(k0 if k0.dim() == 5 else k0.unsqueeze(1))  # [B, C, H, W]; one coil when single
            sens = self.sens_net(kc, mask)
            k = kc
            for block in self.cascades:
                k = block(k, kc, mask, sens)
            mag = rss(ifft2c(k), 1)  # RSS of the coil images, fastMRI's VarNet output
            return complex_to_chan(mag * phase(chan_to_complex(x)))
