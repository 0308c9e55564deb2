"""SSDU (Yaman et al. 2020): self-supervision from undersampled data alone. The acquired columns Omega of a slice
are split into Theta (the network's input and its data consistency) and Lambda (held out: the loss is computed in
k-space on it); the fully sampled centre always stays in Theta."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas_recon.data.sample import Sample
from nas_recon.data.transforms import Draw, crop_corner, input_scale
from nas_recon.defaults import SSDU_RHO as RHO
from nas_recon.defaults import SSDU_SELECTIONS as SELECTIONS
from nas_recon.errors import ConfigError, DataError
from nas_recon.physics.coils import acs_run
from nas_recon.physics.fft import complex_to_chan, fft2c, ifft2c

GAUSS_STD = 0.25  # gaussian selection: the std of the column weights as a share of the width (SSDU's std_scale 4)


@dataclass(frozen=True)
class SsduSplit:
    """How Omega is split: rho = |Lambda| / |Omega|, Lambda drawn uniformly or Gaussian-weighted towards the centre
    from the acquired columns outside the fully sampled centre."""

    rho: float = RHO
    selection: str = "uniform"

    def __post_init__(self) -> None:
        if not 0 < self.rho < 1:
            raise ConfigError(f"--ssdu-rho: expected a fraction in (0, 1), got {self.rho}")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"--ssdu-selection: unknown '{self.selection}', expected {' or '.join(SELECTIONS)}")

    def held_out(self, omega: np.ndarray) -> int:
        """|Lambda| for the acquired columns `omega`."""
        return max(1, int(round(self.rho * int(np.count_nonzero(omega)))))

    def candidates(self, omega: np.ndarray) -> np.ndarray:
        """The acquired columns outside the fully sampled centre (Lambda's pool)."""
        lo, hi = acs_run(omega)
        pool = np.asarray(omega, dtype=bool).copy()
        pool[lo:hi] = False
        return np.flatnonzero(pool)

    def check(self, omega: np.ndarray, where: str | Path) -> None:
        """DataError when `omega` has fewer acquired columns outside its centre than Lambda needs."""
        need, have = self.held_out(omega), len(self.candidates(omega))
        if have < need:
            raise DataError(f"{where}: its mask is too sparse to split for SSDU: {have} acquired columns outside the "
                            f"fully sampled centre, Lambda needs {need} (rho {self.rho:g} of {int(np.sum(omega))}); "
                            "use a smaller --ssdu-rho or less undersampled files")

    def split(self, omega: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(Theta, Lambda): disjoint boolean column masks whose union is `omega`."""
        pool = self.candidates(omega)
        width = omega.shape[0]
        p = None
        if self.selection == "gaussian":
            w = np.exp(-0.5 * ((pool - width // 2) / (GAUSS_STD * width)) ** 2)
            p = w / w.sum()
        lam = np.zeros(width, dtype=bool)
        lam[rng.choice(pool, size=self.held_out(omega), replace=False, p=p)] = True
        return np.asarray(omega, dtype=bool) & ~lam, lam


def column_mask(m: np.ndarray) -> torch.Tensor:
    """A boolean column mask as the [1, 1, W] float tensor of Sample.mask."""
    return torch.from_numpy(m.astype(np.float32)).view(1, 1, -1)


class SsduTransform:
    """An undersampled slice (its zero-filled coil or single-coil image on the full grid, the file's mask) to a
    training sample: Theta's zero-filled input and k-space, Lambda's k-space held out.

    Scaled so that max |zero-filled image under Omega| of the whole slice is 6. Training crops take `crop` rows
    (centred on a random foreground pixel) and every column: a crop along the readout commutes with the column mask,
    a crop across the columns does not. `target` is the zero-filled image under Omega (there is no reference).
    """

    def __init__(self, split: SsduSplit, crop: int | None) -> None:
        self.split_rule, self.crop = split, crop

    def __call__(self, d: Draw) -> Sample:
        img, maps, omega, rng = d.image, d.maps, d.mask, d.rng
        assert omega is not None
        combine = (lambda z: z) if maps is None else (lambda z: (maps.conj() * z).sum(0))
        x_omega = combine(img)
        peak = float(x_omega.abs().max())
        scale = input_scale(peak, d)
        height = img.shape[-2]
        if self.crop is not None and self.crop < height:
            c = self.crop
            top = crop_corner(d.magnitude(), c, rng)[0] if d.train else (height - c) // 2
            img, x_omega = img[..., top: top + c, :], x_omega[..., top: top + c, :]
            maps = None if maps is None else maps[..., top: top + c, :]
        theta, lam = self.split_rule.split(omega, rng)
        th, la, om = column_mask(theta), column_mask(lam), column_mask(omega)
        k = fft2c(img) * om[0]  # exactly zero off Omega after the crop's round trip
        k_theta = k * th[0]
        x0 = ifft2c(k_theta) if maps is None else (maps.conj() * ifft2c(k_theta)).sum(0)
        extra = {} if maps is None else {"maps": complex_to_chan(maps)}
        return Sample(input=complex_to_chan(x0 * scale), target=complex_to_chan(x_omega * scale),
                      kspace=complex_to_chan(k_theta * scale), mask=th, scale=scale, file=d.path.name,
                      slice=d.slice, acceleration=float(omega.shape[0] / max(1, int(omega.sum()))),
                      max_value=d.max_value, holdout=complex_to_chan(k * la[0] * scale), holdout_mask=la, **extra)


def holdout_kspace(out: torch.Tensor, b: Sample) -> tuple[torch.Tensor, torch.Tensor]:
    """(E_Lambda x, y_Lambda): the network output `out` [B, 2, H, W] taken to k-space on Lambda (multi-coil through
    the maps: F S x) and the held-out measurements, complex."""
    from nas_recon.physics.fft import chan_to_complex

    x = chan_to_complex(out.float())
    y = chan_to_complex(b.holdout.float())
    if b.maps.numel():
        k = fft2c(chan_to_complex(b.maps.float()) * x.unsqueeze(1))  # [B, coils, H, W]
        m = b.holdout_mask.float()  # [B, 1, 1, W] over coils and rows
    else:
        k = fft2c(x)  # [B, H, W]
        m = b.holdout_mask.float()[:, 0]  # [B, 1, W]
    return k * m, y


def ssdu_losses(out: torch.Tensor, b: Sample) -> torch.Tensor:
    """SSDU's normalised l1 + l2 on the held-out k-space of each slice [B]:
    ||y - E x||_2 / ||y||_2 + ||y - E x||_1 / ||y||_1 on Lambda."""
    pred, y = holdout_kspace(out, b)
    r = (pred - y).flatten(1)
    y = y.flatten(1)
    l2 = (r.real ** 2 + r.imag ** 2).sum(1).sqrt() / (y.real ** 2 + y.imag ** 2).sum(1).sqrt().clamp_min(1e-12)
    l1 = r.abs().sum(1) / y.abs().sum(1).clamp_min(1e-12)
    return l2 + l1


def ssdu_loss(out: torch.Tensor, b: Sample) -> torch.Tensor:
    """ssdu_losses averaged over the batch (the training objective under supervision = ssdu)."""
    return ssdu_losses(out, b).mean()
