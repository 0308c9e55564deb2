"""Mixup (Zhang et al. 2018) for reconstruction, as the seed report "Ideas in Models" trained its ensembles: a
training slice's fully sampled image is mixed with another's, lam ~ Beta(alpha, alpha), and the mixture is measured
again under the first slice's mask, so that the pair stays a consistent single-coil measurement and its target."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from nas_recon.data.sample import Sample
from nas_recon.physics.fft import chan_to_complex, complex_to_chan, fft2c, ifft2c

MIXUP_STREAM = 7919  # keeps the partner and lam draws apart from the slice's own (mask, crop) draws


class MixupDataset(Dataset):
    """Training slices of `base` (single-coil), each mixed with a partner drawn with lam from the per-(seed, epoch,
    index) generator."""

    def __init__(self, base: Dataset, alpha: float, seed: int) -> None:
        self.base, self.alpha, self.seed, self.epoch = base, float(alpha), int(seed), 0

    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.base.set_epoch(epoch)

    def __getattr__(self, name: str):
        if name == "base":  # not yet set (unpickling)
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, index: int) -> Sample:
        rng = np.random.default_rng([self.seed, self.epoch, index, MIXUP_STREAM])
        partner = int(rng.integers(len(self.base)))
        lam = float(rng.beta(self.alpha, self.alpha))
        a, b = self.base[index], self.base[partner]
        return mix(a, b, lam)


def mix(a: Sample, b: Sample, lam: float) -> Sample:
    """lam a + (1 - lam) b as images, measured under a's mask (a's scale, file and acceleration)."""
    target = lam * a.target + (1 - lam) * b.target
    k = fft2c(chan_to_complex(target)) * a.mask[0]
    return a._replace(input=complex_to_chan(ifft2c(k)), target=target, kspace=complex_to_chan(k))
