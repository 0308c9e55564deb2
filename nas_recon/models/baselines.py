"""Handcrafted baselines of SPEC section 5 (their convs keep a bias, as in their papers)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nas_recon.errors import ConfigError
from nas_recon.models.searched import conv3x3


class ZeroFilled(nn.Module):
    """x0 itself: no learning; multi-coil: the RSS of the zero-filled coil images (fastMRI's), x0's phase."""

    def forward(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor,
                maps: torch.Tensor | None = None) -> torch.Tensor:
        if maps is None or maps.numel() == 0:
            return x
        return with_phase(coil_rss(k0), x)


def coil_rss(k: torch.Tensor) -> torch.Tensor:
    """RSS [B, 1, H, W] of the coil images of multi-coil k-space [B, coils, 2, H, W]."""
    from nas_recon.physics.coils import rss
    from nas_recon.physics.fft import chan_to_complex, ifft2c

    with torch.autocast(k.device.type, enabled=False):
        return rss(ifft2c(chan_to_complex(k.float())), 1).unsqueeze(1)


def with_phase(magnitude: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """magnitude [B, 1, H, W] with the phase of the 2-channel image x (phase 0 where x = 0)."""
    from nas_recon.physics.coils import phase
    from nas_recon.physics.fft import chan_to_complex, complex_to_chan

    return complex_to_chan(magnitude[:, 0] * phase(chan_to_complex(x.float())))


class ResBlock(nn.Module):
    """conv3x3, ReLU, conv3x3, + identity."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(c, c, bias=True)
        self.conv2 = conv3x3(c, c, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class DCCNNBody(nn.Module):
    """D(x) = x + [conv3x3 2->C, ReLU, n residual blocks, conv3x3 C->2](x)."""

    def __init__(self, n: int, c: int = 32) -> None:
        super().__init__()
        self.head = conv3x3(2, c, bias=True)
        self.blocks = nn.Sequential(*[ResBlock(c) for _ in range(n)])
        self.tail = conv3x3(c, 2, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.tail(self.blocks(F.relu(self.head(x))))


class DilatedBlock(nn.Module):
    """conv3x3 dilation 1, ReLU, dilation 2, ReLU, dilation 4, ReLU, + identity."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c, c, 3, padding=d, dilation=d, bias=True) for d in (1, 2, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for conv in self.convs:
            y = F.relu(conv(y))
        return x + y


class RDNBody(nn.Module):
    """D(x) = x + [conv3x3 2->C, one dilated block applied n times (shared weights), conv3x3 C->2](x)."""

    def __init__(self, n: int, c: int = 32) -> None:
        super().__init__()
        self.n = n
        self.head = conv3x3(2, c, bias=True)
        self.block = DilatedBlock(c)
        self.tail = conv3x3(c, 2, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(x)
        for _ in range(self.n):
            y = self.block(y)
        return x + self.tail(y)


class UNetBlock(nn.Module):
    """fastMRI U-Net conv block: (conv3x3 no bias, InstanceNorm, LeakyReLU 0.2) x 2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class UNetUp(nn.Module):
    """fastMRI U-Net up block: transpose conv 2x2 stride 2 (no bias), InstanceNorm, LeakyReLU 0.2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MagnitudeNet(nn.Module):
    """fastMRI's image-domain protocol around a 1-channel-in, 1-out network (`core`): the zero-filled magnitude in
    (multi-coil: the RSS of the zero-filled coil images), normalised per instance (mean/std), the magnitude out,
    un-normalised; the output carries the zero-filled phase so that it stays a complex image like every other
    model's. `min_size`: the least image side its pooling levels take."""

    name = "image network"
    min_size = 1

    def core(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor,
                maps: torch.Tensor | None = None) -> torch.Tensor:
        if min(x.shape[-2:]) < self.min_size:
            h, w, m = x.shape[-2], x.shape[-1], self.min_size
            raise ConfigError(f"{self.name}: image {h}x{w} is smaller than {m}x{m}, the least its pooling levels "
                              "take; use a larger --size or crop")
        mag = torch.sqrt(x[:, 0:1] ** 2 + x[:, 1:2] ** 2 + 1e-24)  # finite gradient at 0
        multicoil = maps is not None and maps.numel() > 0
        source = coil_rss(k0) if multicoil else mag
        mean = source.mean(dim=(1, 2, 3), keepdim=True)
        std = source.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-11)
        out = self.core((source - mean) / std) * std + mean
        if multicoil:
            return with_phase(out, x)
        return x / mag * out  # the zero-filled phase, the network's magnitude


class UNet(MagnitudeNet):
    """The fastMRI U-Net (image domain, no fusion): `chans` at the top, `pools` pooling levels, 1x1 output.

    fastMRI's single-coil protocol (MagnitudeNet), its input clamped to +-6 after normalisation.
    Multi-coil (fastMRI's multi-coil U-Net): its input is the RSS of the zero-filled coil images.
    """

    name = "unet"

    def __init__(self, chans: int = 32, pools: int = 4, cin: int = 1, cout: int = 1) -> None:
        super().__init__()
        self.min_size = 2 ** (pools + 1)  # instance norm at the bottom needs at least 2 x 2 pixels
        self.down = nn.ModuleList([UNetBlock(cin, chans)])
        ch = chans
        for _ in range(pools - 1):
            self.down.append(UNetBlock(ch, ch * 2))
            ch *= 2
        self.bottom = UNetBlock(ch, ch * 2)
        self.up_t = nn.ModuleList()
        self.up_c = nn.ModuleList()
        for _ in range(pools - 1):
            self.up_t.append(UNetUp(ch * 2, ch))
            self.up_c.append(UNetBlock(ch * 2, ch))
            ch //= 2
        self.up_t.append(UNetUp(ch * 2, ch))
        self.up_c.append(nn.Sequential(UNetBlock(ch * 2, ch), nn.Conv2d(ch, cout, 1, bias=True)))

    def core(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)

    def unet(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net proper, on a normalised input."""
        stack: list[torch.Tensor] = []
        y = x.clamp(-6.0, 6.0)
        for layer in self.down:
            y = layer(y)
            stack.append(y)
            y = F.avg_pool2d(y, 2)
        y = self.bottom(y)
        for t, c in zip(self.up_t, self.up_c, strict=True):
            skip = stack.pop()
            y = t(y)
            # reflect-pad when an odd size was halved
            ph, pw = skip.shape[-2] - y.shape[-2], skip.shape[-1] - y.shape[-1]
            if ph != 0 or pw != 0:
                y = F.pad(y, [0, pw, 0, ph], mode="reflect")
            y = c(torch.cat([y, skip], dim=1))
        return y


def per_image_norms(net: nn.Module) -> nn.Module:
    """Every 2-D batch norm of `net` replaced (in place) by the instance norm it computes at batch size 1, with its
    affine weights: fastMRI's image protocol trains at batch 1, where a batch norm normalises each image by its own
    statistics; evaluated on running averages of the last training images instead, the networks fell below
    zero-filled (BENCHMARKS.md, "The seed reports' networks"). Same parameters; no running statistics."""
    for name, child in list(net.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            inst = nn.InstanceNorm2d(child.num_features, eps=child.eps, affine=child.affine)
            if child.affine:
                inst.weight, inst.bias = child.weight, child.bias
            setattr(net, name, inst)
        else:
            per_image_norms(child)
    return net


class PaddedNet(MagnitudeNet):
    """A library's image network under fastMRI's protocol (MagnitudeNet), its input clamped to +-6 and
    reflect-padded to a multiple of `multiple` (its total stride), its output cropped back; its batch norms
    normalise each image by itself (per_image_norms)."""

    def __init__(self, net: nn.Module, name: str, multiple: int, min_size: int) -> None:
        super().__init__()
        self.net, self.name, self.multiple, self.min_size = per_image_norms(net), name, multiple, min_size

    def core(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        y = F.pad(x.clamp(-6.0, 6.0), [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], mode="reflect")
        return self.net(y)[..., ph // 2: ph // 2 + h, pw // 2: pw // 2 + w]
