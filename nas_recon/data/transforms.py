"""Transforms from a slice and its draws to a sample: a fully sampled slice to a training pair (single- and
multi-coil), and a slice measured under its file's own mask to a network input (GivenTransform).

The pair transforms do: (crop: the whole slice's zero-filled peak under its own mask, then a crop centred on a
random foreground pixel in training or the centre in evaluation) -> column mask -> zero-filled input and target ->
scale to max |input| = 6 (a crop like its whole slice). They differ in the operator A^H and the target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas_recon.data.sample import Sample
from nas_recon.errors import DataError
from nas_recon.physics.coils import phase, rss
from nas_recon.physics.fft import center_crop, complex_to_chan, fft2c, ifft2c
from nas_recon.physics.masks import make_mask
from nas_recon.physics.sense import column_projection

INPUT_MAX = 6.0  # SPEC: each slice scaled so that max |x0| = 6


@dataclass
class Draw:
    """What the dataset hands a transform: one slice, its draws and where it comes from."""

    image: torch.Tensor  # complex [H, W], or coil images [coils, H, W]
    acceleration: float
    rng: np.random.Generator  # the draw's generator: masks, then the crop corner
    train: bool  # random crop corners (else centred)
    magnitude: Callable[[], torch.Tensor]  # the whole slice's |image| or RSS (kept by the dataset)
    path: Path
    slice: int
    max_value: float
    maps: torch.Tensor | None = None  # multi-coil: sensitivities [coils, H, W]
    mask: np.ndarray | None = None  # SSDU, given: the file's own column mask (image is then its zero-filled image)
    kspace: torch.Tensor | None = None  # given: the measured k-space (its unacquired columns zero)


def input_scale(peak: float, d: Draw) -> float:
    """The factor that takes a slice's zero-filled peak to INPUT_MAX; DataError for a slice without signal."""
    if not peak > 0:
        raise DataError(f"{d.path}: slice {d.slice} has no signal (its zero-filled image is all zero); "
                        "remove the slice or the file")
    return INPUT_MAX / peak


def crop_corner(mag: torch.Tensor, crop: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left of a crop centred on a random foreground pixel of `mag` (> 10 % of its max)."""
    size = mag.shape[-1]
    ys, xs = torch.nonzero(mag > 0.1 * mag.max(), as_tuple=True)
    if ys.numel() == 0:
        cy, cx = (int(v) for v in rng.integers(0, size, size=2))
    else:
        i = int(rng.integers(ys.numel()))
        cy, cx = int(ys[i]), int(xs[i])
    half = crop // 2
    return min(max(cy - half, 0), size - crop), min(max(cx - half, 0), size - crop)


class PairTransform:
    """The shared steps; subclasses give the zero-filled image A^H M F x and the target."""

    def __init__(self, crop: int | None, mask_kind: str) -> None:
        self.crop, self.mask_kind = crop, mask_kind

    def zero_filled(self, img: torch.Tensor, maps: torch.Tensor | None, m: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def target(self, img: torch.Tensor, maps: torch.Tensor | None, mag: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, d: Draw) -> Sample:
        img, maps, rng, acc = d.image, d.maps, d.rng, d.acceleration
        size = img.shape[-1]
        peak_ref, mag = None, None
        if self.crop is not None and self.crop < size:
            # scale crops like their whole slice (a crop of background must not be blown up to max 6)
            m_full = torch.from_numpy(make_mask(size, acc, None, self.mask_kind, rng).astype(np.float32))
            peak_ref = float(self.zero_filled(img, maps, m_full).abs().max())
            c = self.crop
            top, left = crop_corner(d.magnitude(), c, rng) if d.train else ((size - c) // 2, (size - c) // 2)
            img = img[..., top: top + c, left: left + c]
            maps = None if maps is None else maps[..., top: top + c, left: left + c]
        elif maps is not None:
            mag = d.magnitude()
        width = img.shape[-1]
        mask = torch.from_numpy(make_mask(width, acc, None, self.mask_kind, rng).astype(np.float32)).view(1, 1, width)
        k_meas = fft2c(img) * mask[0]
        x0 = self.zero_filled(img, maps, mask[0])
        peak = float(x0.abs().max()) if peak_ref is None else peak_ref
        scale = input_scale(peak, d)
        extra = {} if maps is None else {"maps": complex_to_chan(maps)}
        return Sample(input=complex_to_chan(x0 * scale), target=complex_to_chan(self.target(img, maps, mag) * scale),
                      kspace=complex_to_chan(k_meas * scale), mask=mask, scale=scale, file=d.path.name,
                      slice=d.slice, acceleration=float(acc), max_value=d.max_value, **extra)


class SingleCoilTransform(PairTransform):
    """Single-coil: x0 = F^H M F x, target the complex image (SPEC's pairs)."""

    def zero_filled(self, img: torch.Tensor, maps: torch.Tensor | None, m: torch.Tensor) -> torch.Tensor:
        return ifft2c(fft2c(img) * m)

    def target(self, img: torch.Tensor, maps: torch.Tensor | None, mag: torch.Tensor | None) -> torch.Tensor:
        return img


class MultiCoilTransform(PairTransform):
    """Multi-coil: x0 = A^H k = S^H F^H M F x (the SENSE-combined zero-filled image), target the RSS magnitude
    (fastMRI's multi-coil target) with the phase of the SENSE-combined fully sampled image."""

    def zero_filled(self, img: torch.Tensor, maps: torch.Tensor | None, m: torch.Tensor) -> torch.Tensor:
        return (maps.conj() * column_projection(img, m)).sum(0)  # F^H M F acts along W alone

    def target(self, img: torch.Tensor, maps: torch.Tensor | None, mag: torch.Tensor | None) -> torch.Tensor:
        return (rss(img) if mag is None else mag) * phase((maps.conj() * img).sum(0))


class GivenTransform:
    """A slice of a file that carries its own mask (fastMRI's test layout) to a network input on its whole acquired
    grid: the measured k-space as is (data consistency included), x0 its zero-filled image (multi-coil: A^H k with
    the maps), scaled so that max |x0| over the central `size` x `size` is 6; `target` is x0 (no reference)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, d: Draw) -> Sample:
        k_meas, maps, m = d.kspace, d.maps, d.mask
        assert k_meas is not None and m is not None
        x0 = d.image if maps is None else (maps.conj() * d.image).sum(0)
        peak = float(center_crop(x0, self.size, self.size).abs().max())
        scale = input_scale(peak, d)
        x = complex_to_chan(x0 * scale)
        width = m.shape[-1]
        extra = {} if maps is None else {"maps": complex_to_chan(maps)}
        return Sample(input=x, target=x.clone(), kspace=complex_to_chan(k_meas * scale),
                      mask=torch.from_numpy(m.astype(np.float32)).view(1, 1, width), scale=scale, file=d.path.name,
                      slice=d.slice, acceleration=float(width / m.sum()), max_value=peak, **extra)
