"""Slice dataset over a folder of fastMRI volumes, single- or multi-coil (lazy, a file handle per worker)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from nas_recon.data.coilmaps import CoilMaps, content_digest
from nas_recon.data.hdf5 import VolumeInfo, check_finite, check_mask, check_target, inspect_volume, open_h5
from nas_recon.data.sample import Sample
from nas_recon.data.ssdu import SsduSplit, SsduTransform
from nas_recon.data.transforms import Draw, GivenTransform, MultiCoilTransform, SingleCoilTransform
from nas_recon.defaults import SIZE
from nas_recon.errors import ConfigError, DataError
from nas_recon.physics.coils import MIN_CALIBRATION, acs_width, rss
from nas_recon.physics.fft import center_crop, fft2c, ifft2c
from nas_recon.physics.masks import MaskSpec, eval_seed, make_mask

CACHE_BYTES = 2 << 30  # paired slices are kept in memory when all of them fit in this many bytes


def list_volumes(folder: str | Path) -> list[Path]:
    """Sorted .h5 files of a folder; DataError when it is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: data folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".h5", ".hdf5") and p.is_file())
    if not files:
        raise DataError(f"{folder}: no .h5 files in the data folder")
    return files


def split_volumes(files: list[Path], fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    """Split volumes (not slices) into two disjoint non-empty sets by a seeded permutation."""
    if len(files) < 2:
        raise DataError(f"need at least 2 volumes to split into disjoint sets, got {len(files)}")
    order = np.random.default_rng([seed, 7919]).permutation(len(files))
    k = min(len(files) - 1, max(1, int(round(fraction * len(files)))))
    first = sorted(files[i] for i in order[:k])
    second = sorted(files[i] for i in order[k:])
    return first, second


class SliceDataset(Dataset):
    """Paired (zero-filled, target) slices: reads a slice lazily (ifft2c -> centre crop to `size`), draws its
    acceleration and generator, multi-coil its sensitivity maps (`coil_estimator`: a registered estimator by name,
    nas_recon.data.coilmaps, cached in `maps_dir`), and hands them to its transform
    (nas_recon.data.transforms: single- or multi-coil) for crop -> mask -> scale.

    mode "train": a fresh (mask, acceleration, crop) per draw from (seed, epoch, index), crops centred on a
    random foreground pixel (|image| > 10 % of the slice max);
    a crop is scaled like its whole slice (max |zero-filled of the full slice| = 6), a full slice to max |x0| = 6;
    mode "eval": every slice once per acceleration, mask fixed per (file, slice, acceleration), centre crop;
    mode "given": the file's own `mask` dataset (fastMRI test/challenge files);
    `ssdu` (train and eval): undersampled files (their own `mask`, no reference) split into Theta and Lambda by
    nas_recon.data.ssdu (train: a fresh split per draw; eval: fixed per (file, slice)); their k-space must be
    --size columns wide (a crop across the columns would not keep the mask), taller ones are cropped along the
    readout.
    """

    def __init__(
        self,
        source: str | Path | list[Path],
        size: int = SIZE,
        crop: int | None = None,
        masks: MaskSpec | None = None,
        mode: str = "train",
        seed: int = 0,
        max_slices: int | None = None,
        max_volumes: int | None = None,
        cache_bytes: int = CACHE_BYTES,
        repeats: int = 1,
        maps_dir: str | Path | None = None,
        write_maps: bool = True,
        ssdu: SsduSplit | None = None,
        coil_estimator: str = "auto",
    ) -> None:
        if mode not in ("train", "eval", "given"):
            raise ConfigError(f"mode: unknown '{mode}', expected train, eval or given")
        if repeats < 1 or (repeats > 1 and mode != "train"):
            raise ConfigError(f"repeats: expected 1 (or more in train mode), got {repeats}")
        if crop is not None and crop > size:
            raise ConfigError(f"crop: {crop} is larger than the image size {size}")
        if crop is not None and crop < 8:
            raise ConfigError(f"crop: expected at least 8, got {crop}")
        files = list_volumes(source) if isinstance(source, (str, Path)) else sorted(Path(p) for p in source)
        if not files:
            raise DataError("no volumes given")
        if max_volumes is not None:
            files = files[:max_volumes]
        self.size, self.crop = size, crop
        self.masks = masks or MaskSpec()
        self.mode, self.seed, self.epoch = mode, seed, 0
        self.volumes: list[VolumeInfo] = [inspect_volume(p, min_size=size) for p in files]
        self.coils = check_one_kind(self.volumes)
        # DDP: every rank reads the maps cache, rank 0 alone writes it
        self.coil_maps_of = CoilMaps(coil_estimator, maps_dir, write_maps)
        if self.coils:
            self.coil_maps_of.check()
        self.ssdu = ssdu
        self.transform: Callable[[Draw], Sample] = (
            GivenTransform(size) if mode == "given" else SsduTransform(ssdu, crop) if ssdu is not None
            else (MultiCoilTransform if self.coils else SingleCoilTransform)(crop, self.masks.kind))
        self._omega: dict[int, np.ndarray] = {}  # SSDU: each volume's own column mask
        if ssdu is not None:
            self.check_ssdu(ssdu)
        elif self.coils and mode != "given":  # decided before any work: ESPIRiT calibrates on the fully sampled centre
            for acc in self.masks.accelerations:
                width = acs_width(make_mask(size, acc, None, self.masks.kind, np.random.default_rng(0)))
                if width < MIN_CALIBRATION:
                    where = files[0] if len(files) == 1 else files[0].parent
                    raise DataError(f"{where}: multi-coil at {acc:g}x and --size {size}: the "
                                    f"fully sampled centre is {width} columns, ESPIRiT needs at least "
                                    f"{MIN_CALIBRATION}; use a larger --size or lower accelerations")
        if mode == "given":
            for v in self.volumes:
                if not v.has_mask:
                    raise DataError(f"{v.path}: no 'mask' dataset, needed to use the file's own mask")
        elif ssdu is None:  # train and eval pair an undersampling of fully sampled k-space with its reference
            for v in self.volumes:
                if v.has_mask:
                    raise DataError(f"{v.path}: carries its own 'mask' (fastMRI's test layout: undersampled, the "
                                    "unacquired columns zero), so it gives no fully sampled reference to "
                                    f"{'train on' if mode == 'train' else 'score against'}; train on undersampled "
                                    "files with --supervision ssdu")
        slices = [(vi, s) for vi, v in enumerate(self.volumes) for s in range(v.num_slices)]
        if max_slices is not None and max_slices < len(slices):
            if max_slices < 1:
                raise ConfigError(f"max_slices: expected at least 1, got {max_slices}")
            picks = np.unique(np.linspace(0, len(slices) - 1, max_slices).round().astype(int))
            slices = [slices[i] for i in picks]
        self.slices = slices
        accs = self.masks.accelerations if mode == "eval" and ssdu is None else (None,)
        self.items: list[tuple[int, int, float | None]] = [(v, s, a) for v, s in slices for a in accs]
        self.repeats = repeats  # train mode: each slice drawn `repeats` times an epoch, each with its own crop/mask
        self._handles: dict[int, h5py.File] = {}
        self._vmax: dict[int, float] = {}
        # paired images (complex64, size x size) are kept once read when the whole set fits in cache_bytes
        per_slice = size * size * 8 * max(1, self.coils) * (1 + len(self.masks.accelerations) * bool(self.coils))
        self.cache_enabled = len(self.slices) * per_slice <= cache_bytes  # multi-coil: coil images and maps
        self._cache: dict[tuple[int, int], torch.Tensor] = {}
        self._digests: dict[tuple[int, int], str] = {}  # slice content digests (the maps cache's keys)
        self._mags: dict[tuple[int, int], torch.Tensor] = {}  # |image| / RSS of the paired slices (crop centres)

    def __len__(self) -> int:
        return len(self.items) * self.repeats

    def set_epoch(self, epoch: int) -> None:
        """Training draws depend on (seed, epoch, index): set the epoch before each pass."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}  # each worker opens its own handles
        return state

    def _file(self, vi: int) -> h5py.File:
        if vi not in self._handles:
            self._handles[vi] = open_h5(self.volumes[vi].path)
        return self._handles[vi]

    def close(self) -> None:
        """Close the open file handles."""
        for f in self._handles.values():
            f.close()
        self._handles.clear()

    def paired_image(self, vi: int, s: int) -> torch.Tensor:
        """Fully sampled complex image of slice `s`, centre-cropped to size x size (cached when enabled); multi-coil:
        its coil images [coils, size, size]."""
        cached = self._cache.get((vi, s))
        if cached is not None:
            return cached
        path = self.volumes[vi].path
        raw = self._file(vi)["kspace"][s]
        check_finite(path, s, raw)
        img = ifft2c(torch.from_numpy(np.asarray(raw, dtype=np.complex64)))
        img = center_crop(img, self.size, self.size).clone()
        if self.cache_enabled:
            self._cache[(vi, s)] = img
        return img

    def volume_max(self, vi: int) -> float:
        """Max of the target volume in original units (from reconstruction_esc when present)."""
        if vi not in self._vmax:
            f = self._file(vi)
            key = self.volumes[vi].target_key
            if key in f and f[key].shape[-2:] == (self.size, self.size):
                target = f[key][()]
                check_target(self.volumes[vi].path, target, key)
                self._vmax[vi] = float(np.max(target))
            else:
                n = self.volumes[vi].num_slices
                mags = (self.slice_magnitude(vi, s, self.paired_image(vi, s)) for s in range(n))
                self._vmax[vi] = max(float(m.max()) for m in mags)
        return self._vmax[vi]

    def magnitude(self, img: torch.Tensor) -> torch.Tensor:
        """|image|, or the RSS of coil images (fastMRI's multi-coil target)."""
        return rss(img) if self.coils else img.abs()

    def slice_magnitude(self, vi: int, s: int, img: torch.Tensor) -> torch.Tensor:
        """magnitude() of slice `s`'s paired image `img`, kept with the cache (every draw of a slice needs it)."""
        mag = self._mags.get((vi, s))
        if mag is None:
            mag = self.magnitude(img)
            if self.cache_enabled:
                self._mags[(vi, s)] = mag
        return mag

    def coil_maps(self, vi: int, s: int, acc: float, img: torch.Tensor | None = None,
                  own: np.ndarray | None = None) -> torch.Tensor:
        """Sensitivity maps [coils, size, size] of slice `s` (its coil images `img`, read when not given) from the
        fully sampled centre of its k-space at `acc` (the same for every mask of that acceleration), or of the file's
        own mask `own` (SSDU: undersampled files): computed once, kept in memory and in `maps_dir`."""
        vol = self.volumes[vi]
        img = self.paired_image(vi, s) if img is None else img
        # known by content: a cache shared by runs (--maps-dir) never serves another file's slice of the same name
        digest = self._digests.get((vi, s)) or content_digest(img)
        self._digests[(vi, s)] = digest
        how = f"{acc:g}x-{self.masks.kind}" if own is None else "own"

        def measured() -> tuple[np.ndarray, np.ndarray]:
            m = (make_mask(self.size, acc, None, self.masks.kind, np.random.default_rng(0)) if own is None
                 else own)  # its centre is all read
            return fft2c(img).numpy() * m, m

        def explain(e: DataError) -> DataError:  # a centre too narrow to calibrate: say where, and what would widen it
            return DataError(f"{vol.path}: slice {s} at {acc:g}x: {e} (the centre is 0.32 / R of --size "
                             f"{self.size}; use a larger --size or lower accelerations)")

        return self.coil_maps_of.get((vi, s, float(acc) if own is None else "own"),
                                     f"{vol.path.stem}-{s}-{how}-{self.size}", digest,
                                     (self.coils, self.size, self.size), measured, self.cache_enabled, explain)

    def check_ssdu(self, split: SsduSplit) -> None:
        """Before any work: every volume undersampled (its own mask, --size columns wide, splittable; multi-coil: a
        centre wide enough for ESPIRiT)."""
        if self.mode not in ("train", "eval"):
            raise ConfigError(f"mode: SSDU samples are drawn in train or eval mode, not {self.mode}")
        for vi, v in enumerate(self.volumes):
            if not v.has_mask:
                raise DataError(f"{v.path}: fully sampled (no 'mask'); --supervision ssdu trains on undersampled files "
                                "(fastMRI's test layout): write them with nas-recon data undersample, or train with "
                                "--supervision full")
            if v.width != self.size:
                raise DataError(f"{v.path}: k-space {v.width} columns wide, --size is {self.size}; SSDU keeps every "
                                f"column (a crop across them would not keep the mask): use --size {v.width}")
            omega = self.omega(vi)
            split.check(omega, v.path)
            if self.coils and acs_width(omega) < MIN_CALIBRATION:
                raise DataError(f"{v.path}: the fully sampled centre of its mask is {acs_width(omega)} columns, "
                                f"ESPIRiT needs at least {MIN_CALIBRATION}")

    def omega(self, vi: int) -> np.ndarray:
        """The acquired columns of volume `vi` (its own mask, boolean [W])."""
        if vi not in self._omega:
            v = self.volumes[vi]
            with open_h5(v.path) as f:
                self._omega[vi] = check_mask(v.path, f["mask"], v.width).astype(bool)
        return self._omega[vi]

    def given_sample(self, vi: int, s: int) -> Sample:
        """A slice of a file that carries its own mask (fastMRI test files): the measured k-space on its own grid.

        The mask is as wide as the k-space; the network runs on the whole acquired grid (k-space exactly as
        measured, data consistency included) and the caller centre-crops its output to size x size. `target` is
        the zero-filled image (these files have no fully sampled reference). Multi-coil: ESPIRiT maps from the
        fully sampled centre of the file's own mask, the input A^H k.
        """
        vol = self.volumes[vi]
        raw = np.asarray(self._file(vi)["kspace"][s], dtype=np.complex64)
        check_finite(vol.path, s, raw)
        width = raw.shape[-1]
        m = check_mask(vol.path, self._file(vi)["mask"], width)
        mask = torch.from_numpy(m.astype(np.float32)).view(1, 1, width)
        k_meas = torch.from_numpy(raw) * mask[0]
        maps = None
        if self.coils:  # the same component as the paired slices: its own mask's centre, cached by content
            maps = self.coil_maps_of.get(
                (vi, s, "given"), f"{vol.path.stem}-{s}-given-{width}", content_digest(k_meas),
                (self.coils, raw.shape[-2], width), lambda: (k_meas.numpy(), m), self.cache_enabled,
                lambda e: DataError(f"{vol.path}: slice {s}: {e}"))
        return self.transform(Draw(ifft2c(k_meas), float(width / m.sum()), np.random.default_rng(0), False,
                                   lambda: torch.zeros(()), vol.path, s, 0.0, maps, m, k_meas))

    def __getitem__(self, index: int) -> Sample:
        vi, s, acc = self.items[index % len(self.items)]
        if self.mode == "given":
            return self.given_sample(vi, s)
        vol = self.volumes[vi]
        img = self.paired_image(vi, s)
        if self.mode == "train":
            rng = np.random.default_rng([self.seed, self.epoch, index])
        else:
            rng = np.random.default_rng(eval_seed(self.seed, vol.path.name, s, acc or 0.0))
        omega = None
        if self.ssdu is not None:
            omega = self.omega(vi)
            acc = omega.shape[0] / max(1, int(omega.sum()))
        elif self.mode == "train":
            acc = self.masks.draw_acceleration(rng)
        maps = self.coil_maps(vi, s, float(acc), img, omega) if self.coils else None
        return self.transform(Draw(img, float(acc), rng, self.mode == "train", lambda: self.slice_magnitude(vi, s, img),
                                   vol.path, s, self.volume_max(vi), maps, omega))


def check_one_kind(volumes: list[VolumeInfo]) -> int:
    """The coil count the volumes share (0: single-coil); a clear error for mixed kinds or coil counts."""
    counts = {v.coils for v in volumes}
    if len(counts) > 1:
        a = next(v for v in volumes if v.coils == min(counts))
        b = next(v for v in volumes if v.coils == max(counts))
        what = "single- and multi-coil volumes" if 0 in counts else "volumes with different coil counts"
        raise DataError(f"{a.path.parent}: {what} in one set ({a.path.name}: {a.coils or 'single'} coil(s), "
                        f"{b.path.name}: {b.coils}); batches need one kind: split the folder")
    return counts.pop()
