"""Slice dataset over a folder of fastMRI single-coil volumes (lazy, a file handle per worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from nas_recon.data.hdf5 import VolumeInfo, check_finite, check_target, inspect_volume, open_h5
from nas_recon.data.sample import Sample
from nas_recon.defaults import SIZE
from nas_recon.errors import ConfigError, DataError
from nas_recon.physics.fft import center_crop, complex_to_chan, fft2c, ifft2c
from nas_recon.physics.masks import MaskSpec, eval_seed, make_mask

INPUT_MAX = 6.0  # SPEC: each slice scaled so that max |x0| = 6
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
    """Paired (zero-filled, target) slices: ifft2c -> centre crop to `size` -> fft2c -> mask.

    mode "train": a fresh (mask, acceleration, crop) per draw from (seed, epoch, index), crops centred on a
    random foreground pixel (|image| > 10 % of the slice max);
    a crop is scaled like its whole slice (max |zero-filled of the full slice| = 6), a full slice to max |x0| = 6;
    mode "eval": every slice once per acceleration, mask fixed per (file, slice, acceleration), centre crop;
    mode "given": the file's own `mask` dataset (fastMRI test/challenge files).
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
        for v in self.volumes:
            if v.coils:
                raise DataError(f"{v.path}: multi-coil volume ({v.coils} coils): search, retraining, evaluation and "
                                "reconstruction on multi-coil data are not built yet (`nas-recon data check` "
                                "validates it)")
        if mode == "given":
            for v in self.volumes:
                if not v.has_mask:
                    raise DataError(f"{v.path}: no 'mask' dataset, needed to use the file's own mask")
        slices = [(vi, s) for vi, v in enumerate(self.volumes) for s in range(v.num_slices)]
        if max_slices is not None and max_slices < len(slices):
            if max_slices < 1:
                raise ConfigError(f"max_slices: expected at least 1, got {max_slices}")
            picks = np.unique(np.linspace(0, len(slices) - 1, max_slices).round().astype(int))
            slices = [slices[i] for i in picks]
        self.slices = slices
        accs = self.masks.accelerations if mode == "eval" else (None,)
        self.items: list[tuple[int, int, float | None]] = [(v, s, a) for v, s in slices for a in accs]
        self.repeats = repeats  # train mode: each slice drawn `repeats` times an epoch, each with its own crop/mask
        self._handles: dict[int, h5py.File] = {}
        self._vmax: dict[int, float] = {}
        # paired images (complex64, size x size) are kept once read when the whole set fits in cache_bytes
        self.cache_enabled = len(self.slices) * size * size * 8 <= cache_bytes
        self._cache: dict[tuple[int, int], torch.Tensor] = {}

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
        """Fully sampled complex image of slice `s`, centre-cropped to size x size (cached when enabled)."""
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
            if "reconstruction_esc" in f and f["reconstruction_esc"].shape[-2:] == (self.size, self.size):
                target = f["reconstruction_esc"][()]
                check_target(self.volumes[vi].path, target)
                self._vmax[vi] = float(np.max(target))
            else:
                n = self.volumes[vi].num_slices
                self._vmax[vi] = max(float(self.paired_image(vi, s).abs().max()) for s in range(n))
        return self._vmax[vi]

    def crop_corner(self, img: torch.Tensor, rng: np.random.Generator) -> tuple[int, int]:
        """Top-left of a training crop centred on a random foreground pixel (|img| > 10 % of its max)."""
        mag = img.abs()
        ys, xs = torch.nonzero(mag > 0.1 * mag.max(), as_tuple=True)
        if ys.numel() == 0:
            cy, cx = (int(v) for v in rng.integers(0, self.size, size=2))
        else:
            i = int(rng.integers(ys.numel()))
            cy, cx = int(ys[i]), int(xs[i])
        half = self.crop // 2
        top = min(max(cy - half, 0), self.size - self.crop)
        left = min(max(cx - half, 0), self.size - self.crop)
        return top, left

    def given_sample(self, vi: int, s: int) -> Sample:
        """A slice of a file that carries its own mask (fastMRI test files): the measured k-space on its own grid.

        The mask is as wide as the k-space; the network runs on the whole acquired grid (k-space exactly as
        measured, data consistency included) and the caller centre-crops its output to size x size. `target` is
        the zero-filled image (these files have no fully sampled reference).
        """
        vol = self.volumes[vi]
        raw = np.asarray(self._file(vi)["kspace"][s], dtype=np.complex64)
        check_finite(vol.path, s, raw)
        m = np.asarray(self._file(vi)["mask"][()]).reshape(-1)
        width = raw.shape[-1]
        if m.shape[0] != width:
            raise DataError(f"{vol.path}: 'mask' has {m.shape[0]} columns, expected {width} (one per k-space column)")
        if not np.isin(m, (0, 1)).all() or not m.any():
            raise DataError(f"{vol.path}: 'mask' must hold 0/1 per column with at least one sampled column")
        mask = torch.from_numpy(m.astype(np.float32)).view(1, 1, width)
        k_meas = torch.from_numpy(raw) * mask[0]
        x0 = ifft2c(k_meas)
        peak = float(center_crop(x0, self.size, self.size).abs().max())
        if not peak > 0:
            raise DataError(f"{vol.path}: slice {s} has no signal (its zero-filled image is all zero); "
                            "remove the slice or the file")
        scale = INPUT_MAX / peak
        x = complex_to_chan(x0 * scale)
        return Sample(input=x, target=x.clone(), kspace=complex_to_chan(k_meas * scale), mask=mask, scale=scale,
                      file=vol.path.name, slice=s, acceleration=float(width / m.sum()), max_value=peak)

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
        if self.mode == "train":
            acc = self.masks.draw_acceleration(rng)
        peak_ref = None
        if self.crop is not None and self.crop < self.size:
            # scale crops like their whole slice (a crop of background must not be blown up to max 6)
            m_full = make_mask(self.size, acc, None, self.masks.kind, rng)
            m_full_t = torch.from_numpy(m_full.astype(np.float32))
            peak_ref = float(ifft2c(fft2c(img) * m_full_t).abs().max())
            if self.mode == "train":
                top, left = self.crop_corner(img, rng)
                img = img[top : top + self.crop, left : left + self.crop]
            else:
                img = center_crop(img, self.crop, self.crop)
        k = fft2c(img)
        width = k.shape[-1]
        m = make_mask(width, acc, None, self.masks.kind, rng)
        mask = torch.from_numpy(m.astype(np.float32)).view(1, 1, width)
        k_meas = k * mask[0]
        x0 = ifft2c(k_meas)
        peak = float(x0.abs().max()) if peak_ref is None else peak_ref
        if not peak > 0:
            raise DataError(f"{vol.path}: slice {s} has no signal (its zero-filled image is all zero); "
                            "remove the slice or the file")
        scale = INPUT_MAX / peak
        return Sample(
            input=complex_to_chan(x0 * scale),
            target=complex_to_chan(img * scale),
            kspace=complex_to_chan(k_meas * scale),
            mask=mask,
            scale=scale,
            file=vol.path.name,
            slice=s,
            acceleration=float(acc),
            max_value=self.volume_max(vi),
        )
