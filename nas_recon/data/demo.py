"""Offline demo dataset: fastMRI-style single-coil files made from a magnitude NIfTI volume.

Rule (documented in README): resample the slices so that the head's bounding box spans `fill` (0.9) of the
frame, like a real scan whose anatomy fills the field of view; take the axial slices (last NIfTI axis) whose foreground
(> 10 % of the volume max) covers at least 15 % of the slice, keep `slices` of them evenly spaced,
cut them into `volumes` contiguous slabs, and send slab i to train / val / test by i mod 5
(0, 1, 3 -> train; 2 -> val; 4 -> test). Slabs are disjoint, so no slice is in two splits.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch

from nas_recon import __version__
from nas_recon.defaults import SIZE
from nas_recon.errors import ConfigError, DataError
from nas_recon.io import check_writable, dir_mode, swap_folder
from nas_recon.physics.coils import birdcage, rss
from nas_recon.physics.fft import fft2c, ifft2c

MNI152_FILE = "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
SPLIT_OF_SLAB = {0: "train", 1: "train", 2: "val", 3: "train", 4: "test"}
PEAK = 2e-4  # intensity of the brightest voxel, about fastMRI's single-coil scale


def mni152_path() -> Path:
    """Path of the MNI152 T1 template inside the installed nilearn package."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise DataError("source mni152: nilearn is not installed (pip install nilearn), or pass --source PATH.nii")
    path = Path(spec.origin).parent / MNI152_FILE
    if not path.is_file():
        raise DataError(f"source mni152: {path} not found in the installed nilearn")
    return path


def load_nifti(path: Path) -> np.ndarray:
    """A 3-D magnitude volume from a NIfTI file, as float32."""
    import nibabel as nib

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as e:  # nibabel raises many types for unreadable files
        raise DataError(f"{path}: not a readable NIfTI file ({str(e).splitlines()[0]})") from e
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"{path}: NIfTI volume has shape {data.shape}, expected 3-D")
    if not np.isfinite(data).all():
        raise DataError(f"{path}: NIfTI volume contains NaN or Inf")
    return data


def pad_or_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-pad with zeros and/or centre-crop a 2-D image to size x size."""
    out = np.zeros((size, size), dtype=img.dtype)
    h, w = img.shape
    sh, sw = max(0, (h - size) // 2), max(0, (w - size) // 2)
    dh, dw = max(0, (size - h) // 2), max(0, (size - w) // 2)
    ch, cw = min(h, size), min(w, size)
    out[dh : dh + ch, dw : dw + cw] = img[sh : sh + ch, sw : sw + cw]
    return out


def smooth_phase(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth low-order random phase map (constant + linear + quadratic terms) in radians."""
    y, x = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    c = rng.normal(size=6) * np.array([np.pi, 1.0, 1.0, 0.5, 0.5, 0.5])
    return (c[0] + c[1] * x + c[2] * y + c[3] * x * y + c[4] * x**2 + c[5] * y**2).astype(np.float32)


MAX_COILS = 32  # fastMRI's arrays have 4-20 (brain) or 15 (knee)
COIL_CORRELATION = 0.3  # noise correlation of neighbouring coils (|i - j| = 1), decaying as a power
MAX_ZOOM = 4.0  # in-plane upsampling beyond this makes images with no detail left to reconstruct


def fill_zoom(vol: np.ndarray, picks: list[int], size: int, fill: float) -> float:
    """Zoom factor that makes the head's bounding box (over the kept slices) span `fill` of the frame."""
    fg = (vol[:, :, picks] > 0.1 * float(vol.max())).any(axis=2)
    ys, xs = np.nonzero(fg)
    extent = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    return fill * size / float(extent)


def zoom_slice(img: np.ndarray, zoom: float) -> np.ndarray:
    """Resample a 2-D magnitude slice by `zoom` (linear interpolation, anti-aliased when shrinking)."""
    if abs(zoom - 1.0) < 1e-6:
        return img
    from skimage.transform import rescale

    return rescale(img, zoom, order=1, anti_aliasing=zoom < 1, preserve_range=True).astype(np.float32)


def content_slices(vol: np.ndarray) -> list[int]:
    """Axial indices whose foreground (> 10 % of max) covers at least 15 % of the slice."""
    thr = 0.1 * float(vol.max())
    frac = (vol > thr).mean(axis=(0, 1))
    return [int(i) for i in np.nonzero(frac >= 0.15)[0]]


def check_coils(coils: int, flag: str = "coils") -> None:
    """Refuse a coil count the demo cannot simulate."""
    if not 0 <= coils <= MAX_COILS or coils == 1:
        raise ConfigError(f"{flag}: expected 0 (single-coil) or 2 to {MAX_COILS}, got {coils}")


def build_demo(
    out: Path,
    source: str = "mni152",
    size: int = SIZE,
    seed: int = 0,
    slices: int = 60,
    volumes: int = 10,
    noise: float = 0.01,
    fill: float | None = 0.9,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    coils: int = 0,
) -> dict:
    """Write train/ val/ test/ fastMRI-style files under `out` (atomically) and return the manifest.

    `coils` > 0: multi-coil files (fastMRI's layout: `kspace` [slices, coils, H, W], `reconstruction_rss`): each
    coil image is the slice times a birdcage sensitivity, plus noise correlated between neighbouring coils.
    """
    out = Path(out)
    if size < 16:
        raise ConfigError(f"size: expected at least 16, got {size}")
    check_coils(coils)
    if volumes < 5:
        raise ConfigError(f"volumes: expected at least 5 (one slab per split rule), got {volumes}")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise DataError(f"{out}: folder exists and is not empty (use --force to replace it)")
        check_replaceable(out)
    check_writable(out.parent, "--out")  # before the volume is read and the slices made
    src_path = mni152_path() if source == "mni152" else Path(source)
    vol = load_nifti(src_path)
    if float(vol.max()) <= 0:
        raise DataError(f"{src_path}: NIfTI volume has no positive intensity")
    keep = content_slices(vol)
    if len(keep) < volumes:
        raise DataError(f"{src_path}: only {len(keep)} slices with content, need at least {volumes}")
    picks = [keep[i] for i in np.unique(np.linspace(0, len(keep) - 1, min(slices, len(keep))).round().astype(int))]
    if len(picks) < volumes:
        raise ConfigError(f"slices: {slices} is fewer than the {volumes} volumes to fill")
    slabs = np.array_split(np.array(picks), volumes)
    if fill is not None and not 0 < fill <= 1.5:
        raise ConfigError(f"fill: expected a fraction of the frame in (0, 1.5], got {fill}")
    zoom = 1.0 if fill is None else fill_zoom(vol, picks, size, fill)
    if zoom > MAX_ZOOM:
        raise DataError(f"{src_path}: the head spans about {fill * size / zoom:.0f} pixels in-plane; filling a "
                        f"{size}-pixel frame would upsample it {zoom:.1f}x (at most {MAX_ZOOM:g}x, beyond that the "
                        "'scan' is interpolation blur); use a finer volume or a smaller --size")
    rng = np.random.default_rng(seed)
    vmax = float(vol.max())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, dir_mode())  # mkdtemp makes 0700; the demo folder gets the mode any new folder gets (umask)
    manifest: dict = {
        "format": "nas-recon-demo", "version": 1, "package_version": __version__,
        "source": source if source == "mni152" else str(src_path), "size": size, "seed": seed,
        "noise": noise, "zoom": round(zoom, 4), "fill": fill,
        "rule": "axial content slices, evenly spaced, contiguous slabs; slab i -> "
        "train if i%5 in (0,1,3), val if 2, test if 4", "files": {},
    }
    if coils:
        maps = birdcage(coils, size, size)
        mix = np.linalg.cholesky(COIL_CORRELATION ** np.abs(np.subtract.outer(np.arange(coils), np.arange(coils))))
        manifest.update({"coils": coils, "coil_maps": "birdcage (sigpy), RSS max 1",
                         "coil_noise_correlation": f"{COIL_CORRELATION} ** |i - j|"})
    fractions: list[float] = []
    try:
        for name in ("train", "val", "test"):
            (tmp / name).mkdir()
        for i, slab in enumerate(slabs):
            split = SPLIT_OF_SLAB[i % 5]
            imgs = []
            for z in slab:
                mag = pad_or_crop(zoom_slice(np.rot90(vol[:, :, z]), zoom), size) / vmax * PEAK
                fractions.append(float((mag > 0.1 * PEAK).mean()))
                img = mag * np.exp(1j * smooth_phase(size, rng))
                shape = (coils, *img.shape) if coils else img.shape
                white = (rng.normal(size=shape) + 1j * rng.normal(size=shape)) / np.sqrt(2)
                if coils:  # each coil sees the slice through its map; noise correlated between neighbours
                    img = maps * img + noise * PEAK * np.tensordot(mix, white, axes=1)
                else:
                    img = img + noise * PEAK * white
                imgs.append(img.astype(np.complex64))
            kspace = fft2c(torch.from_numpy(np.stack(imgs))).numpy().astype(np.complex64)
            images = ifft2c(torch.from_numpy(kspace))
            recon = (rss(images, 1) if coils else images.abs()).numpy().astype(np.float32)
            fname = f"demo_slab{i:02d}.h5"
            write_volume(tmp / split / fname, kspace, recon, manifest["source"], [int(z) for z in slab])
            manifest["files"][f"{split}/{fname}"] = {"slices": [int(z) for z in slab]}
            if progress is not None:
                progress(i + 1, len(slabs))
        manifest["foreground_fraction"] = round(float(np.mean(fractions)), 4)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        swap_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def check_replaceable(out: Path) -> None:
    """Refuse unless `out` is a demo folder nas-recon wrote: its manifest lists every file in it."""
    manifest = out / "manifest.json"
    try:
        meta = json.loads(manifest.read_text())
        if meta.get("format") != "nas-recon-demo":
            raise ValueError
        listed = set(meta["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise DataError(f"{out}: not a demo folder written by nas-recon (no valid manifest.json); "
                        "refusing to replace it, choose another folder") from None
    allowed = listed | {"manifest.json", "train", "val", "test"}
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(out).as_posix()
        if rel not in allowed:
            raise DataError(f"{out}: holds {rel}, which nas-recon did not write as part of this demo data (its "
                            "manifest.json does not list it: a --maps-dir cache, or a file of yours); refusing to "
                            "replace the folder: move it out, or choose another folder")


def write_volume(path: Path, kspace: np.ndarray, recon: np.ndarray, source: str, slices: list[int]) -> None:
    """One fastMRI-style file: single-coil (`kspace` [n, H, W], `reconstruction_esc`) or multi-coil (`kspace`
    [n, coils, H, W], `reconstruction_rss`)."""
    h, w = kspace.shape[-2:]
    header = (
        '<?xml version="1.0" encoding="utf-8"?><ismrmrdHeader><encoding><encodedSpace><matrixSize>'
        f"<x>{h}</x><y>{w}</y><z>1</z></matrixSize></encodedSpace><reconSpace><matrixSize>"
        f"<x>{recon.shape[1]}</x><y>{recon.shape[2]}</y><z>1</z></matrixSize></reconSpace></encoding>"
        "</ismrmrdHeader>"
    )
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace)
        f.create_dataset("reconstruction_rss" if kspace.ndim == 4 else "reconstruction_esc", data=recon)
        f.create_dataset("ismrmrd_header", data=header)
        f.attrs["max"] = float(recon.max())
        f.attrs["norm"] = float(np.linalg.norm(recon))
        f.attrs["acquisition"] = "AXT1"
        f.attrs["source"] = source
        f.attrs["source_slices"] = np.asarray(slices, dtype=np.int32)
