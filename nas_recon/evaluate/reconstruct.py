"""Reconstruct fastMRI files with a trained checkpoint into fastMRI-style `reconstruction` files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from nas_recon.data.dataset import SliceDataset, list_volumes
from nas_recon.data.hdf5 import inspect_volume, open_h5
from nas_recon.defaults import SIZE
from nas_recon.errors import ConfigError, NasReconError
from nas_recon.evaluate.scoring import Predictor
from nas_recon.io import atomic_path
from nas_recon.outputs import KINDS, MARKER, check_output_dir, check_output_files
from nas_recon.physics.fft import center_crop, chan_to_complex
from nas_recon.physics.masks import MaskSpec


def reconstruct_file(predict: Predictor, path: Path, out_dir: Path, size: int = SIZE, acceleration: float = 4.0,
                     mask_type: str = "random", seed: int = 0) -> Path:
    """Write OUT/<name> with `reconstruction` float32 [slices, size, size] in the input's intensity units."""
    info = inspect_volume(path, min_size=size)
    mode = "given" if info.has_mask else "eval"
    ds = SliceDataset([path], size, None, MaskSpec(mask_type, (acceleration,)), mode, seed)
    recon = np.zeros((info.num_slices, size, size), dtype=np.float32)
    for i in range(len(ds)):
        s = ds[i]
        out = predict(s.batched())[0]  # given masks: the whole acquired grid, cropped here as fastMRI does
        recon[s.slice] = center_crop(chan_to_complex(out), size, size).abs().numpy() / s.scale
    ds.close()
    target = out_dir / path.name
    with atomic_path(target) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("reconstruction", data=recon)
        f.attrs["acceleration"] = float(acceleration) if mode == "eval" else float(ds[0].acceleration)
        f.attrs["mask"] = "from file" if mode == "given" else mask_type
        f.attrs[MARKER] = KINDS["reconstruction"]  # a later reconstruct may replace this file, nothing else
    return target


def check_outputs(files: list[Path], out_dir: Path) -> None:
    """Refuse an output folder where a reconstruction would replace an input or any file that is not an earlier
    reconstruction (nas_recon.outputs), before anything is written."""
    check_output_dir(out_dir)
    check_output_files([out_dir / f.name for f in files], "reconstruction", inputs=files)


def check_mask_flags(files: list[Path], acceleration: float | None, mask_type: str | None) -> None:
    """Refuse --acceleration / --mask-type for files that carry their own mask (they would be ignored there)."""
    given = [name for name, v in (("--acceleration", acceleration), ("--mask-type", mask_type)) if v is not None]
    if not given:
        return
    for f in files:
        try:
            with open_h5(f) as h5:
                own = "mask" in h5
        except NasReconError:
            continue  # reported with the file when it is reconstructed
        if own:
            raise ConfigError(f"{given[0]}: {f} carries its own 'mask' (fastMRI's test layout), which is used "
                              "instead; the flag applies only to files without one (drop it, or give those files "
                              "separately)")


def reconstruct(predict: Predictor, source: Path, out_dir: Path, size: int = SIZE, acceleration: float | None = None,
                mask_type: str | None = None, seed: int = 0,
                progress: Callable[[int, int], None] | None = None) -> tuple[list[Path], list[str]]:
    """Reconstruct one file or every .h5 file of a folder; a bad file is reported and the rest go on.

    Files with a `mask` use it; the others get a fixed mask of `acceleration` (4) and `mask_type` (random).
    Returns (written files, one error line per file that failed).
    """
    files = [source] if source.is_file() else list_volumes(source)
    check_outputs(files, out_dir)
    check_mask_flags(files, acceleration, mask_type)
    acceleration, mask_type = acceleration or 4.0, mask_type or "random"
    outs, failed = [], []
    for i, f in enumerate(files):
        try:
            outs.append(reconstruct_file(predict, f, out_dir, size, acceleration, mask_type, seed))
        except (NasReconError, OSError) as e:
            failed.append(str(e) if isinstance(e, NasReconError) else f"{e.filename or f}: {e.strerror or e}")
        if progress is not None:
            progress(i + 1, len(files))
    return outs, failed
