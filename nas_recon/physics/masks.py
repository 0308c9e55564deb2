"""Cartesian undersampling masks with fastMRI semantics (whole phase-encoding columns)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from nas_recon.defaults import ACCELERATIONS
from nas_recon.errors import ConfigError

MASK_KINDS = ("random", "equispaced")


def center_fraction_for(acceleration: float) -> float:
    """fastMRI's pairing of centre fraction with acceleration: 8 % at 4x, 4 % at 8x (0.32 / R)."""
    return min(1.0, 0.32 / acceleration)


def check_mask_args(kind: str, acceleration: float) -> None:
    """Raise ConfigError for an unknown mask kind or an acceleration below 1."""
    if kind not in MASK_KINDS:
        raise ConfigError(f"mask type: unknown '{kind}', expected one of {', '.join(MASK_KINDS)}")
    if not acceleration >= 1:
        raise ConfigError(f"acceleration: expected a number >= 1, got {acceleration}")


def make_mask(
    width: int,
    acceleration: float,
    center_fraction: float | None = None,
    kind: str = "random",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Boolean column mask of length `width` (True = sampled), fastMRI RandomMaskFunc/EquispacedMaskFunc."""
    check_mask_args(kind, acceleration)
    if rng is None:
        rng = np.random.default_rng(0)
    cf = center_fraction_for(acceleration) if center_fraction is None else center_fraction
    num_low = int(round(width * cf))
    num_low = max(1, min(width, num_low))
    mask = np.zeros(width, dtype=bool)
    if kind == "random":
        if num_low < width:
            prob = (width / acceleration - num_low) / (width - num_low)
            mask = rng.uniform(size=width) < prob
    else:
        if num_low * acceleration < width:
            adjusted = acceleration * (num_low - width) / (num_low * acceleration - width)
            offset = int(rng.integers(0, max(1, round(adjusted))))
            picks = np.around(np.arange(offset, width - 1, adjusted)).astype(np.int64)
            mask[picks[picks < width]] = True
    pad = (width - num_low + 1) // 2
    mask[pad : pad + num_low] = True
    return mask


def eval_seed(seed: int, file: str, slice_index: int, acceleration: float) -> list[int]:
    """Seed sequence that fixes the evaluation mask of one (file, slice, acceleration)."""
    return [int(seed), zlib.crc32(file.encode()), int(slice_index), int(round(acceleration * 1000))]


@dataclass(frozen=True)
class MaskSpec:
    """Which masks to draw: kind, accelerations (equal probability in training), centre fractions."""

    kind: str = "random"
    accelerations: tuple[float, ...] = ACCELERATIONS

    def __post_init__(self) -> None:
        if not self.accelerations:
            raise ConfigError("accelerations: expected at least one acceleration")
        twice = sorted({a for a in self.accelerations if list(self.accelerations).count(a) > 1})
        if twice:  # every slice would be counted once per repetition
            raise ConfigError(f"--accelerations: {twice[0]:g} is given twice")
        for a in self.accelerations:
            check_mask_args(self.kind, a)

    def draw_acceleration(self, rng: np.random.Generator) -> float:
        """An acceleration chosen uniformly among `accelerations`."""
        return float(self.accelerations[int(rng.integers(len(self.accelerations)))])

    def draw(self, width: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """Draw (mask, acceleration) with the acceleration chosen uniformly among `accelerations`."""
        acc = self.draw_acceleration(rng)
        return make_mask(width, acc, None, self.kind, rng), acc
