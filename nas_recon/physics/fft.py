"""Centered orthonormal 2-D FFTs and the 2-channel complex layout (pure functions)."""

from __future__ import annotations

import torch


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2-D FFT over the last two dims of a complex tensor."""
    x = torch.fft.ifftshift(x, dim=(-2, -1))
    x = torch.fft.fft2(x, norm="ortho")
    return torch.fft.fftshift(x, dim=(-2, -1))


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2-D inverse FFT over the last two dims of a complex tensor."""
    k = torch.fft.ifftshift(k, dim=(-2, -1))
    k = torch.fft.ifft2(k, norm="ortho")
    return torch.fft.fftshift(k, dim=(-2, -1))


def complex_to_chan(x: torch.Tensor) -> torch.Tensor:
    """Complex [..., H, W] -> real [..., 2, H, W] with channels [re, im]."""
    return torch.stack((x.real, x.imag), dim=-3)


def chan_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Real [..., 2, H, W] -> complex [..., H, W]."""
    if x.shape[-3] != 2:
        raise ValueError("expected 2 channels [re, im] at dim -3")
    return torch.complex(x[..., 0, :, :].contiguous(), x[..., 1, :, :].contiguous())


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop the last two dims of `x` to (height, width) about the centre (fastMRI convention)."""
    h, w = x.shape[-2], x.shape[-1]
    if height > h or width > w:
        raise ValueError(f"cannot crop {h}x{w} to {height}x{width}: image smaller than the crop")
    top = (h - height) // 2
    left = (w - width) // 2
    return x[..., top : top + height, left : left + width]
