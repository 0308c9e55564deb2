"""fastMRI's test layout from fully sampled volumes, for training without references (self-supervision): each
volume's k-space under one seeded column mask (the unacquired columns zero), its `mask`, no reference image."""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from nas_recon.data.dataset import list_volumes
from nas_recon.data.hdf5 import inspect_volume
from nas_recon.errors import ConfigError, DataError
from nas_recon.physics.coils import acs_width
from nas_recon.physics.masks import check_mask_args, make_mask

UNDERSAMPLED = ("train", "val")  # the splits written undersampled; test/ keeps its references for evaluation
STREAM = 4242  # keeps these masks apart from the training and evaluation draws
KEEP_ATTRS = ("acquisition", "patient_id", "source", "source_slices")  # those that do not describe the reference


def volume_mask(seed: int, name: str, width: int, acceleration: float, kind: str) -> np.ndarray:
    """The one column mask of a volume (fastMRI's test files hold one per volume), fixed by (seed, file name)."""
    rng = np.random.default_rng([int(seed), zlib.crc32(name.encode()), int(round(acceleration * 1000)), STREAM])
    return make_mask(width, acceleration, None, kind, rng)


def undersample_volume(src: Path, dst: Path, acceleration: float, kind: str, seed: int) -> dict[str, Any]:
    """Write `dst`: `src`'s k-space under its volume mask, `mask`, its ISMRMRD header; no reconstruction."""
    info = inspect_volume(src)
    if info.has_mask:
        raise DataError(f"{src}: already undersampled (it carries a 'mask'); undersample fully sampled files")
    with h5py.File(src, "r") as f:
        k = f["kspace"][()]
        header = f["ismrmrd_header"][()] if "ismrmrd_header" in f else None
        attrs = {a: f.attrs[a] for a in KEEP_ATTRS if a in f.attrs}
    m = volume_mask(seed, src.name, k.shape[-1], acceleration, kind)
    with h5py.File(dst, "w") as g:
        g.create_dataset("kspace", data=(k * m).astype(k.dtype))
        g.create_dataset("mask", data=m)
        if header is not None:
            g.create_dataset("ismrmrd_header", data=header)
        for a, v in attrs.items():
            g.attrs[a] = v
        g.attrs["acceleration"] = float(acceleration)
        g.attrs["num_low_frequency"] = acs_width(m)
    return {"columns": int(m.sum()), "width": int(m.shape[0])}


def undersample_folder(data: Path, out: Path, acceleration: float, kind: str = "random", seed: int = 0,
                       progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """DATA/train and DATA/val undersampled into OUT (test/ copied with its references); written in a temporary
    folder beside OUT, then renamed: OUT must not exist."""
    check_mask_args(kind, acceleration)
    if out.exists():
        raise ConfigError(f"--out: {out} exists; undersample writes a new folder (choose another --out)")
    splits = {s: list_volumes(data / s) for s in UNDERSAMPLED if (data / s).is_dir()}
    missing = [s for s in UNDERSAMPLED if s not in splits]
    if missing:
        raise DataError(f"{data}: no {'/, '.join(missing)}/ folder (undersample reads DATA/train and DATA/val)")
    tests = list_volumes(data / "test") if (data / "test").is_dir() else []
    total = sum(len(v) for v in splits.values()) + len(tests)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    done = 0
    manifest: dict[str, Any] = {"format": "nas-recon-undersampled", "version": 1, "source": str(data),
                                "acceleration": acceleration, "mask_type": kind, "seed": seed, "files": {}}
    try:
        for split, files in splits.items():
            (tmp / split).mkdir(parents=True)
            for src in files:
                manifest["files"][f"{split}/{src.name}"] = undersample_volume(src, tmp / split / src.name,
                                                                               acceleration, kind, seed)
                done += 1
                if progress is not None:
                    progress(done, total)
        if tests:
            (tmp / "test").mkdir(parents=True)
            for src in tests:  # evaluation keeps the references
                shutil.copy2(src, tmp / "test" / src.name)
                manifest["files"][f"test/{src.name}"] = {"fully_sampled": True}
                done += 1
                if progress is not None:
                    progress(done, total)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest
