"""The typed sample every data loader yields."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

NO_MAPS = torch.zeros(0)  # a single-coil sample's maps (collated to [B, 0])


class Sample(NamedTuple):
    """One undersampled slice, scaled so that max |input| = 6 (divide by `scale` to undo).

    input: zero-filled image [2, H, W]; target: fully sampled image [2, H, W];
    kspace: measured (masked) k-space [2, H, W]; mask: [1, 1, W] (1 = sampled);
    max_value: max of the target volume in original units (metrics' data range).
    Multi-coil: kspace is [coils, 2, H, W], maps the coil sensitivities [coils, 2, H, W], input the
    sensitivity-combined zero-filled image A^H k and target the RSS magnitude (fastMRI's multi-coil target) with
    the phase of the sensitivity-combined fully sampled image; single-coil: maps is empty.
    SSDU (nas_recon.data.ssdu): mask and kspace are Theta's, holdout the measured k-space on Lambda (shaped like
    kspace) and holdout_mask Lambda [1, 1, W], target the zero-filled image under all acquired columns; supervised
    samples leave both empty.
    """

    input: torch.Tensor
    target: torch.Tensor
    kspace: torch.Tensor
    mask: torch.Tensor
    scale: float
    file: str
    slice: int
    acceleration: float
    max_value: float
    maps: torch.Tensor = NO_MAPS
    holdout: torch.Tensor = NO_MAPS
    holdout_mask: torch.Tensor = NO_MAPS

    @property
    def multicoil(self) -> bool:
        return self.maps.numel() > 0

    def inputs(self, device: torch.device | None = None) -> tuple[torch.Tensor, ...]:
        """What every model takes, (input, kspace, mask, maps), on `device` when given."""
        t = (self.input, self.kspace, self.mask, self.maps)
        return t if device is None else tuple(x.to(device) for x in t)

    def to(self, device: torch.device) -> Sample:
        """This sample (or batch) with its tensors on `device`."""
        return Sample(*(f.to(device) if isinstance(f, torch.Tensor) else f for f in self))

    def batched(self) -> Sample:
        """This sample as a batch of one (tensors gain a batch dim, the other fields become 1-lists)."""
        return Sample(*(f.unsqueeze(0) if isinstance(f, torch.Tensor) else [f] for f in self))


def unscaled_magnitudes(out: torch.Tensor, b: Sample) -> list[tuple[np.ndarray, np.ndarray]]:
    """(target, prediction) magnitudes of each batch item, float64, in the file's intensity units."""
    from nas_recon.physics.fft import chan_to_complex

    pairs = []
    for i in range(out.shape[0]):
        s = float(b.scale[i])
        gt = chan_to_complex(b.target[i]).abs().numpy().astype(np.float64) / s
        pairs.append((gt, chan_to_complex(out[i]).abs().numpy().astype(np.float64) / s))
    return pairs
