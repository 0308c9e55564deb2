"""DIRCN (Ottesen et al. 2022, "A densely interconnected network for deep learning accelerated MRI"): cascades of
ResXUNets with data consistency, each cascade fed every earlier cascade's input (input-level dense connections)
and the previous cascade's decoder features (long-range skip connections, the "interconnections").

Written from the paper and the authors' code for nas-recon's cascade family: the images are nas-recon's
2-channel complex images, and the data consistency is the family's k-space fusion (single-coil, or the SENSE
operator of the given coil maps), soft with a learnt weight: DIRCN's k = (k0 + w F S y) / (1 + w) on the
sampled points is the fusion's (k + lam k0) / (1 + lam) with lam = 1 / w, started at w = 0.01 as the authors'.
DIRCN learns its coil maps with a sensitivity network; here the maps are the data pipeline's (ESPIRiT), as for
the other cascades, so its parameters are those of the authors' cascades alone.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nas_recon.physics.fusion import CG_ITERATIONS, KSpaceFusion

START_WEIGHT = 0.01  # the authors' initial soft-DC weight w


def norm(c: int) -> nn.Module:
    """Instance norm with a learnt affine map (the authors' bias=True)."""
    return nn.InstanceNorm2d(c, affine=True)


class SqueezeExcitation(nn.Module):
    """Channel gates from global average pooling (Hu et al.), `ratio` of the channels in the squeeze."""

    def __init__(self, c: int, ratio: float) -> None:
        super().__init__()
        mid = max(1, int(c * ratio))
        self.squeeze = nn.Conv2d(c, mid, 1)
        self.excite = nn.Conv2d(mid, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.excite(F.relu(self.squeeze(F.adaptive_avg_pool2d(x, 1)))))


class ResXBlock(nn.Module):
    """conv3x3, norm, act, grouped conv3x3, norm, squeeze-excitation, + identity, act."""

    def __init__(self, c: int, groups: int, ratio: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), norm(c), nn.SiLU(),
                                  nn.Conv2d(c, c, 3, padding=1, groups=groups, bias=False), norm(c),
                                  SqueezeExcitation(c, ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x + self.body(x))


class Bottleneck(nn.Module):
    """1x1 to `mid`, norm, act, grouped 3x3, norm, act, 1x1 back, norm, squeeze-excitation, + identity, act."""

    def __init__(self, c: int, mid: int, groups: int, ratio: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, mid, 1, bias=False), norm(mid), nn.SiLU(),
                                  nn.Conv2d(mid, mid, 3, padding=1, groups=groups, bias=False), norm(mid), nn.SiLU(),
                                  nn.Conv2d(mid, c, 1, bias=False), norm(c), SqueezeExcitation(c, ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x + self.body(x))


def conv_norm_act(cin: int, cout: int, k: int, stride: int = 1, transpose: bool = False) -> nn.Sequential:
    """A bias-free (transposed) conv, norm, SiLU."""
    conv = (nn.ConvTranspose2d(cin, cout, k, stride=stride, bias=False) if transpose
            else nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2 if stride == 1 else 0, bias=False))
    return nn.Sequential(conv, norm(cout), nn.SiLU())


class ResXUNet(nn.Module):
    """DIRCN's U-Net: 4 strided-conv downsamplings (n, 2n, 4n, 8n, 8n channels) with ResNeXt blocks and
    squeeze-excitation, two bottlenecks at the bottom. `linked`: each decoder level also takes the previous
    cascade's features of that level (returned by `forward` beside the output, finest first)."""

    LEVELS = 4

    def __init__(self, cin: int, cout: int, n: int, groups: int, ratio: float, linked: bool) -> None:
        super().__init__()
        width = (n, 2 * n, 4 * n, 8 * n)
        gs = (groups, 2 * groups, 2 * groups, 4 * groups)
        self.stem = conv_norm_act(cin, n, 3)
        self.enc = nn.ModuleList([ResXBlock(n, groups, ratio)])
        self.down = nn.ModuleList()
        for i in range(1, 4):
            self.down.append(conv_norm_act(width[i - 1], width[i], 2, stride=2))
            self.enc.append(ResXBlock(width[i], gs[i], ratio))
        self.down.append(conv_norm_act(8 * n, 8 * n, 2, stride=2))
        self.bottom = nn.Sequential(*(Bottleneck(8 * n, 4 * n, 4 * groups, ratio) for _ in range(2)))
        self.rise = conv_norm_act(8 * n, 8 * n, 2, stride=2, transpose=True)
        self.merge = nn.ModuleList()
        self.dec = nn.ModuleList()
        self.up = nn.ModuleList()  # after each decoder level but the finest
        k = 3 if linked else 2
        for i in (3, 2, 1, 0):
            self.merge.append(conv_norm_act(k * width[i], width[i], 3))
            self.dec.append(ResXBlock(width[i], gs[i], ratio) if i else
                            nn.Sequential(ResXBlock(n, groups, ratio), Bottleneck(n, n, groups, ratio)))
            self.up.append(conv_norm_act(width[i], width[i - 1], 2, stride=2, transpose=True) if i else nn.Identity())
        self.out = nn.Conv2d(n, cout, 1)

    def forward(self, x: torch.Tensor, links: list[torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips: list[torch.Tensor] = []
        y = self.stem(x)
        for enc, down in zip(self.enc, self.down, strict=True):
            y = enc(y)
            skips.append(y)
            y = down(y)
        y = self.rise(self.bottom(y))
        out: list[torch.Tensor] = []
        level = 4  # ResXUNet.LEVELS
        for merge, dec, rise in zip(self.merge, self.dec, self.up, strict=True):
            level -= 1
            parts = [y, skips[level]]
            if links is not None:
                parts.append(links[level])
            y = dec(merge(torch.cat(parts, dim=1)))
            out.insert(0, y)
            y = rise(y)
        return self.out(y), out


class DIRCNBody(nn.Module):
    """One cascade's network: the stacked images normalised per channel, zero-padded to a multiple of 16 (and at
    least 32), through a ResXUNet; the output un-normalised with the current image's statistics (its first two
    channels)."""

    def __init__(self, images: int, n: int, groups: int, ratio: float, linked: bool) -> None:
        super().__init__()
        self.multiple = 2 ** ResXUNet.LEVELS
        self.net = ResXUNet(2 * images, 2, n, groups, ratio, linked)

    def forward(self, x: torch.Tensor, links: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True).clamp_min(1e-11)
        h, w = x.shape[-2:]
        least = 2 * self.multiple  # instance norm at the bottom needs 2 x 2 pixels (training crops can be small)
        ph, pw = max(-h % self.multiple, least - h), max(-w % self.multiple, least - w)
        y = F.pad((x - mean) / std, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        y, feats = self.net(y, links)
        return y[..., ph // 2: ph // 2 + h, pw // 2: pw // 2 + w] * std[:, :2] + mean[:, :2], feats


class DIRCN(nn.Module):
    """x_{c+1} = fusion_c(body_c([x_c, x_{c-1}, ..., x_0], features of body_{c-1})); the cascade family's
    interface and multi-coil output (the RSS of the last fusion's data-consistent coil images)."""

    def __init__(self, cascades: int = 30, n: int = 20, groups: int = 4, ratio: float = 1 / 8,
                 cg_iterations: int = CG_ITERATIONS) -> None:
        super().__init__()
        self.bodies = nn.ModuleList(DIRCNBody(c + 1, n, groups, ratio, linked=c > 0) for c in range(cascades))
        self.fusions = nn.ModuleList(KSpaceFusion(1 / START_WEIGHT, True, cg_iterations) for _ in range(cascades))

    def forward(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor,
                maps: torch.Tensor | None = None) -> torch.Tensor:
        """x: zero-filled [B, 2, H, W]; k0 [B, 2, H, W] (multi-coil: k0 and maps [B, coils, 2, H, W])."""
        stack = x
        links: list[torch.Tensor] | None = None
        for body, fusion in zip(self.bodies, self.fusions, strict=True):
            y, links = body(stack, links)
            x = fusion(y, k0, mask, maps)
            stack = torch.cat([x, stack], dim=1)
        if maps is not None and maps.numel() > 0 and not torch.jit.is_scripting():
            return self.fusions[-1].coil_output(x, k0, mask, maps)
        return x

