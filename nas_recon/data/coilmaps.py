"""Coil sensitivities as a dataset component: a registered estimator chosen by name, its maps kept in memory and in
a folder cache shared by runs."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_recon.errors import ConfigError, DataError
from nas_recon.io import save_array
from nas_recon.options import option
from nas_recon.physics.coils import COIL_ESTIMATORS, CoilEstimator, coil_estimator

FLAG = "--coil-estimator"


def estimator_choices() -> tuple[str, ...]:
    """The names `--coil-estimator` takes: auto and every registered estimator."""
    return ("auto", *COIL_ESTIMATORS)


def estimator_option() -> Any:
    """The `coil_estimator` field of a run's config (search, retrain): its flag, default and choices, declared once."""
    return option("auto", "multi-coil: the coil-sensitivity estimator (auto: BART's ESPIRiT when on PATH, else "
                  "sigpy's; or a registered name)", choices=estimator_choices())


def check_estimator_name(name: str) -> str:
    """`name` when it is auto or a registered estimator; ConfigError naming the flag otherwise."""
    if name != "auto" and name not in COIL_ESTIMATORS:
        raise ConfigError(f"{FLAG}: unknown '{name}', expected one of {', '.join(estimator_choices())}")
    return name


def resolve_estimator(name: str) -> CoilEstimator:
    """The registered estimator `name` ('auto': the first available); ConfigError naming the flag when it is
    unknown or cannot run here."""
    est = coil_estimator(check_estimator_name(name))
    if not est.available():
        raise ConfigError(f"{FLAG}: '{name}' is not available on this machine ({est.method}); use auto")
    return est


def content_digest(x: torch.Tensor | np.ndarray) -> str:
    """A short digest of an array's bytes: the cache knows a slice by content, not by its file's name."""
    arr = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return hashlib.blake2b(arr.tobytes(), digest_size=6).hexdigest()


class CoilMaps:
    """Sensitivity maps [coils, H, W] by the estimator `name`, computed once per key: kept in memory (`keep`) and
    as `STEM-KEY-DIGEST.npy` in `folder` (read when there; written unless `write` is off: a DDP rank other than 0)."""

    def __init__(self, name: str = "auto", folder: str | Path | None = None, write: bool = True) -> None:
        self.name = check_estimator_name(name)  # resolved on use: the registry's entries hold functions
        self._key: str | None = None
        self.folder = Path(folder) if folder is not None else None
        self.write = write
        self._mem: dict[tuple, torch.Tensor] = {}

    @property
    def estimator(self) -> CoilEstimator:
        """The estimator the name resolves to here."""
        return resolve_estimator(self.name)

    @property
    def key(self) -> str:
        """The estimator's short name in the cache's file names."""
        if self._key is None:
            self._key = self.estimator.key
        return self._key

    @property
    def method(self) -> str:
        """What run.json records of the maps."""
        return self.estimator.method

    def check(self) -> None:
        """Before any work: ConfigError unless the estimator runs here and the cache folder is, or can be made, a
        writable folder."""
        resolve_estimator(self.name)
        if self.folder is not None and self.write:
            check_maps_dir(self.folder)

    def estimate(self, kspace: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Maps from undersampled k-space [coils, H, W] and its column mask, by the estimator."""
        return self.estimator.estimate(kspace, mask)

    def get(self, key: tuple, stem: str, digest: str, want: tuple[int, int, int],
            measured: Callable[[], tuple[np.ndarray, np.ndarray]], keep: bool,
            explain: Callable[[DataError], DataError] = lambda e: e) -> torch.Tensor:
        """The maps of `key`: from memory, the cache file, or estimated from `measured()` (undersampled k-space
        [coils, H, W], its column mask); an estimation error goes through `explain` (the caller says where)."""
        if key in self._mem:
            return self._mem[key]
        path = self.folder / f"{stem}-{self.key}-{digest}.npy" if self.folder else None
        if path is not None and path.is_file():
            maps = read_maps(path, want)
        else:
            k, m = measured()
            try:
                maps = self.estimate(k, m)
            except DataError as e:
                raise explain(e) from None
            if path is not None and self.write:
                save_array(path, maps)
        out = torch.from_numpy(maps)
        if keep:
            self._mem[key] = out
        return out


def read_maps(path: Path, want: tuple[int, int, int]) -> np.ndarray:
    """Cached maps of the expected shape; DataError saying how to recover otherwise."""
    try:
        maps = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable sensitivity maps ({e}); delete the file to recompute") from None
    if maps.shape != want or maps.dtype != np.complex64:
        raise DataError(f"{path}: sensitivity maps of shape {maps.shape} ({maps.dtype}), expected {want} "
                        "complex64; delete the file to recompute")
    return maps


def check_maps_dir(folder: Path) -> None:
    """ConfigError unless `folder` is, or can be made, a writable folder for the maps (decided before any work, not
    at the first map)."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: the maps folder (--maps-dir) is a file, expected a folder")
    base = next(p for p in (folder, *folder.parents) if p.exists())
    if not base.is_dir():
        raise ConfigError(f"{folder}: the maps folder (--maps-dir) lies under the file {base}")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{folder}: the maps folder (--maps-dir) cannot be written ({base} is read-only)")
