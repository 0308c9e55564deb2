"""The typed sample every data loader yields."""

from __future__ import annotations

from typing import NamedTuple

import torch


class Sample(NamedTuple):
    """One undersampled slice, scaled so that max |input| = 6 (divide by `scale` to undo).

    input: zero-filled image [2, H, W]; target: fully sampled image [2, H, W];
    kspace: measured (masked) k-space [2, H, W]; mask: [1, 1, W] (1 = sampled);
    max_value: max of the target volume in original units (metrics' data range).
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

    def batched(self) -> Sample:
        """This sample as a batch of one (tensors gain a batch dim, the other fields become 1-lists)."""
        return Sample(*(f.unsqueeze(0) if isinstance(f, torch.Tensor) else [f] for f in self))
