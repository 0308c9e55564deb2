"""Coil arrays (pure functions): root-sum-of-squares, the calibration region, ESPIRiT (BART or sigpy) and
birdcage maps (sigpy).

Layout: coil images and maps are complex [coils, H, W] (numpy or torch as stated); the coil axis comes first,
as in fastMRI's multi-coil `kspace` [slices, coils, H, W].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from nas_recon.errors import DataError

MIN_CALIBRATION = 6  # columns of fully sampled centre ESPIRiT calibrates on (3 x 3 kernels at the least)


def rss(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Root-sum-of-squares over `dim` of complex (or real) coil images: fastMRI's multi-coil target."""
    return torch.sqrt((x.abs() ** 2).sum(dim))


def phase(z: torch.Tensor) -> torch.Tensor:
    """z / |z|, and 1 where z = 0 (outside the maps' support the RSS target keeps its magnitude)."""
    return torch.where(z.abs() > 0, torch.sgn(z), torch.ones((), dtype=z.dtype, device=z.device))


def acs_run(mask: np.ndarray) -> tuple[int, int]:
    """The fully sampled centre of a Cartesian column mask as columns [lo, hi): the sampled run through the centre
    column (empty, lo == hi, when the centre column is not sampled)."""
    m = np.asarray(mask).reshape(-1).astype(bool)
    c = m.shape[0] // 2
    if not m[c]:
        return c, c
    lo, hi = c, c
    while lo > 0 and m[lo - 1]:
        lo -= 1
    while hi < m.shape[0] - 1 and m[hi + 1]:
        hi += 1
    return lo, hi + 1


def acs_width(mask: np.ndarray) -> int:
    """Width of the fully sampled centre of a Cartesian column mask: the sampled run through the centre column."""
    lo, hi = acs_run(mask)
    return hi - lo


# ESPIRiT zeroes the maps where the top eigenvalue falls below `crop`; BART's eigenvalues come on another scale:
# on the 8-coil demo BART's crop 0.95 left 49 % of the image covered against sigpy's 66 % and lost 13-19 % of the
# slice's RSS energy (TV fell 9.6 dB), while BART's 0.7 covers 66 % / 75 % at 4x / 8x (sigpy: 66 % / 73 %) with
# the same energy kept (96.5 %), so each backend gets the crop that gives the same support
ESPIRIT_CROP = {"sigpy": 0.95, "bart": 0.7}


@dataclass(frozen=True)
class CoilEstimator:
    """A coil-sensitivity estimator: (undersampled k-space [coils, H, W], column mask [W]) -> maps [coils, H, W]."""

    name: str
    key: str  # its short name in the maps cache's file names
    method: str  # what run.json records of its maps
    estimate: Callable[[np.ndarray, np.ndarray], np.ndarray]
    available: Callable[[], bool] = lambda: True


COIL_ESTIMATORS: dict[str, CoilEstimator] = {}  # in order of preference: 'auto' takes the first available


def register_estimator(e: CoilEstimator) -> CoilEstimator:
    """Add a coil-sensitivity estimator under its name."""
    if e.name in COIL_ESTIMATORS:
        raise ValueError(f"coil estimator '{e.name}' is already registered")
    COIL_ESTIMATORS[e.name] = e
    return e


def coil_estimator(name: str = "auto") -> CoilEstimator:
    """The registered estimator `name`, or for 'auto' the first available one."""
    if name == "auto":
        return next(e for e in COIL_ESTIMATORS.values() if e.available())
    if name not in COIL_ESTIMATORS:
        raise ValueError(f"coil estimator: unknown '{name}', expected auto, {', '.join(COIL_ESTIMATORS)}")
    return COIL_ESTIMATORS[name]


def espirit_estimator(backend: str = "auto") -> CoilEstimator:
    """The ESPIRiT estimator `backend` ('auto', 'bart' or 'sigpy') names."""
    return coil_estimator(backend if backend == "auto" else f"espirit-{backend}")


def espirit_backend(backend: str = "auto") -> str:
    """The ESPIRiT implementation `backend` ('auto', 'bart' or 'sigpy') resolves to: 'bart' (BART's ecalib, when
    on PATH for 'auto') or 'sigpy' (sigpy's EspiritCalib)."""
    return espirit_estimator(backend).key


def espirit_method(backend: str) -> str:
    """What run.json records of the maps of `backend` ('bart' or 'sigpy')."""
    return coil_estimator(f"espirit-{backend}").method


def calibration(mask: np.ndarray) -> tuple[int, int]:
    """The fully sampled centre's width and the ESPIRiT kernel it supports (6 x 6 needs ~3 kernel widths: narrower
    centres, small images and 8x, get smaller kernels, down to 3)."""
    width = acs_width(mask)
    if width < MIN_CALIBRATION:
        raise DataError(f"ESPIRiT needs a fully sampled centre of at least {MIN_CALIBRATION} columns; the mask has "
                        f"{width}")
    return width, 6 if width >= 18 else max(3, width // 3)


def espirit_bart(kspace: np.ndarray, mask: np.ndarray, thresh: float = 0.02) -> np.ndarray:
    """ESPIRiT by BART's `ecalib` (one set of maps)."""
    from nas_recon.physics import bart

    width, kernel = calibration(mask)
    k = np.asarray(kspace, np.complex64)
    c, h, w = k.shape
    maps = bart.run(["ecalib", "-m1", "-r", str(width), "-k", str(kernel), "-t", str(thresh), "-c",
                     str(ESPIRIT_CROP["bart"])], {"ksp": np.moveaxis(k, 0, -1).reshape(h, w, 1, c)}, "sens")
    return np.ascontiguousarray(np.moveaxis(maps.reshape(h, w, c), -1, 0), np.complex64)


def espirit_sigpy(kspace: np.ndarray, mask: np.ndarray, thresh: float = 0.02) -> np.ndarray:
    """ESPIRiT by sigpy's EspiritCalib (10 power iterations per pixel: the maps of 100, sigpy's default, to 1e-6
    in agreement, 2x faster)."""
    from sigpy.mri.app import EspiritCalib

    width, kernel = calibration(mask)
    maps = EspiritCalib(np.asarray(kspace, np.complex64), calib_width=width, kernel_width=kernel, thresh=thresh,
                        crop=ESPIRIT_CROP["sigpy"], max_iter=10, show_pbar=False).run()
    return np.asarray(maps, np.complex64)


def espirit_maps(kspace: np.ndarray, mask: np.ndarray, backend: str = "auto") -> np.ndarray:
    """ESPIRiT sensitivities from the fully sampled centre of undersampled k-space: BART's `ecalib` or sigpy's
    EspiritCalib, with the same calibration region, kernel and threshold, and crops that give the same support
    (ESPIRIT_CROP).

    kspace: complex [coils, H, W], zeros where unsampled; mask: the [W] column mask. Returns complex64 [coils, H, W].
    """
    return espirit_estimator(backend).estimate(kspace, mask)


def _espirit_method(tool: str, crop: float) -> str:
    return (f"ESPIRiT ({tool}, threshold 0.02, crop {crop}) from the fully sampled centre of the undersampled "
            "k-space, once per (file, slice, acceleration)")


def _bart_available() -> bool:
    from nas_recon.physics.bart import available

    return available()


register_estimator(CoilEstimator("espirit-bart", "bart", _espirit_method("BART ecalib -m1", ESPIRIT_CROP["bart"]),
                                 espirit_bart, _bart_available))
register_estimator(CoilEstimator("espirit-sigpy", "sigpy",
                                 _espirit_method("sigpy EspiritCalib, 10 power iterations", ESPIRIT_CROP["sigpy"]),
                                 espirit_sigpy))


def birdcage(coils: int, height: int, width: int, radius: float = 1.5) -> np.ndarray:
    """Smooth analytic sensitivities of a birdcage array (sigpy), complex64 [coils, H, W], scaled to RSS max 1."""
    import sigpy.mri as mr

    maps = mr.birdcage_maps((coils, height, width), r=radius, nzz=coils).astype(np.complex64)
    return maps / np.sqrt((np.abs(maps) ** 2).sum(0)).max()


def map_agreement(estimate: np.ndarray, truth: np.ndarray, where: np.ndarray) -> float:
    """Median over the pixels `where` of |<s_est, s_true>| / (|s_est| |s_true|) across coils: 1 = the same maps up
    to a per-pixel complex factor (ESPIRiT's maps are unique up to a phase and their norm)."""
    num = np.abs(np.sum(np.conj(estimate) * truth, axis=0))
    den = np.linalg.norm(estimate, axis=0) * np.linalg.norm(truth, axis=0) + 1e-12
    return float(np.median((num / den)[where]))
