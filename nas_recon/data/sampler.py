"""A resumable shuffling sampler (no NNI needed)."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    """Shuffles with a permutation drawn from (seed, epoch): resumable and worker-count independent."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        return iter(np.random.default_rng([self.seed, self.epoch, 31]).permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n
