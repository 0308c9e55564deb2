"""Squeeze U-Net (Beheshti & Johnsson 2020): a U-Net of SqueezeNet's fire modules, in the layout of the Keras
implementation the seed report ("Project Report: CS 7643") trained (lhelontra/squeeze-unet): a strided 3x3 stem,
three max-pooling stages of two fire modules each, four more fire modules at the bottom (dropout 0.5), and an
expansive path of transposed 3x3 convs and fire modules. For reconstruction its top activation is the identity
(the Keras default is a sigmoid for segmentation), and it runs under fastMRI's U-Net protocol (MagnitudeNet).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Fire(nn.Module):
    """SqueezeNet's fire module: a 1x1 squeeze (ReLU, batch norm), then 1x1 and 3x3 expands (ReLU), concatenated."""

    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU(), nn.BatchNorm2d(squeeze, eps=1e-3))
        self.e1 = nn.Conv2d(squeeze, expand, 1)
        self.e3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([F.relu(self.e1(s)), F.relu(self.e3(s))], dim=1)


def up(cin: int, cout: int, stride: int) -> nn.ConvTranspose2d:
    """A transposed 3x3 conv that keeps (stride 1) or doubles (stride 2) the image side, as Keras' 'same'."""
    return nn.ConvTranspose2d(cin, cout, 3, stride=stride, padding=1, output_padding=stride - 1)


class SqueezeUNet(nn.Module):
    """Squeeze U-Net on 1-channel images; `width` scales every layer (1: the reference's 64 ... 512 channels)."""

    STRIDE = 16

    def __init__(self, cin: int = 1, cout: int = 1, width: float = 1.0, dropout: float = 0.5) -> None:
        super().__init__()

        def c(k: int) -> int:
            return max(1, round(k * width))

        self.stem = nn.Conv2d(cin, c(64), 3, stride=2, padding=1)
        self.stage1 = nn.Sequential(Fire(c(64), c(16), c(64)), Fire(2 * c(64), c(16), c(64)))
        self.stage2 = nn.Sequential(Fire(2 * c(64), c(32), c(128)), Fire(2 * c(128), c(32), c(128)))
        self.stage3 = nn.Sequential(Fire(2 * c(128), c(48), c(192)), Fire(2 * c(192), c(48), c(192)))
        self.stage4 = nn.Sequential(Fire(2 * c(192), c(64), c(256)), Fire(2 * c(256), c(64), c(256)),
                                    nn.Dropout(dropout))
        self.up1, self.fire1 = up(2 * c(256), c(192), 1), Fire(c(192) + 2 * c(192), c(48), c(192))
        self.up2, self.fire2 = up(2 * c(192), c(128), 1), Fire(c(128) + 2 * c(128), c(32), c(128))
        self.up3, self.fire3 = up(2 * c(128), c(64), 2), Fire(c(64) + 2 * c(64), c(16), c(64))
        self.up4, self.fire4 = up(2 * c(64), c(32), 2), Fire(c(32) + c(64), c(16), c(32))
        self.head = nn.Conv2d(2 * c(32) + c(64), c(64), 3, padding=1)
        self.out = nn.Conv2d(c(64), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x01 = F.relu(self.stem(x))  # 1/2
        x02 = F.max_pool2d(x01, 3, 2, padding=1)  # 1/4
        x05 = F.max_pool2d(self.stage1(x02), 3, 2, padding=1)  # 1/8
        x08 = F.max_pool2d(self.stage2(x05), 3, 2, padding=1)  # 1/16
        x10 = self.stage3(x08)
        y = self.stage4(x10)
        y = self.fire1(torch.cat([self.up1(y), x10], dim=1))
        y = self.fire2(torch.cat([self.up2(y), x08], dim=1))
        y = self.fire3(torch.cat([self.up3(y), x05], dim=1))
        y = self.fire4(torch.cat([self.up4(y), x02], dim=1))
        y = F.interpolate(y, scale_factor=2.0, mode="nearest")
        y = F.relu(self.head(torch.cat([y, x01], dim=1)))
        return self.out(F.interpolate(y, scale_factor=2.0, mode="nearest"))
