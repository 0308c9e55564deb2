"""Opening and checking fastMRI HDF5 volumes (single- and multi-coil), with one-line errors naming the file."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np

from nas_recon.errors import DataError


@dataclass(frozen=True)
class VolumeInfo:
    """What a valid volume holds (`coils` 0: single-coil, `kspace` [slices, H, W]; else [slices, coils, H, W])."""

    path: Path
    num_slices: int
    height: int
    width: int
    has_target: bool
    has_mask: bool
    coils: int = 0
    padding: tuple[int, int] | None = None  # acquired columns [left, right) from the ISMRMRD header, when present

    @property
    def target_key(self) -> str:
        """fastMRI's reference image: the ESC reconstruction (single-coil) or the coils' root-sum-of-squares."""
        return "reconstruction_rss" if self.coils else "reconstruction_esc"


def open_h5(path: Path) -> h5py.File:
    """Open an HDF5 file read-only, or raise DataError saying why it cannot be read."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        is_h5 = h5py.is_hdf5(str(path))
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e})") from e
    if not is_h5:
        raise DataError(f"{path}: not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: HDF5 file is truncated or corrupt ({str(e).splitlines()[0]})") from e


def check_kspace(path: Path, f: h5py.File, min_size: int | None = None) -> VolumeInfo:
    """Check the `kspace` dataset of an open file: present, complex, rank 3, slices, size."""
    if "kspace" not in f:
        raise DataError(f"{path}: missing dataset 'kspace' (expected complex64 [slices, H, W])")
    ks = f["kspace"]
    if not isinstance(ks, h5py.Dataset):
        raise DataError(f"{path}: 'kspace' is not a dataset")
    if ks.dtype.kind != "c":
        raise DataError(f"{path}: 'kspace' has dtype {ks.dtype}, expected complex (complex64)")
    if ks.ndim not in (3, 4):
        raise DataError(f"{path}: 'kspace' has rank {ks.ndim} {tuple(ks.shape)}, expected [slices, H, W] "
                        "(single-coil) or [slices, coils, H, W] (multi-coil)")
    coils = int(ks.shape[1]) if ks.ndim == 4 else 0
    n, h, w = int(ks.shape[0]), int(ks.shape[-2]), int(ks.shape[-1])
    if n == 0:
        raise DataError(f"{path}: 'kspace' has zero slices")
    if ks.ndim == 4 and coils < 2:
        raise DataError(f"{path}: 'kspace' [slices, coils, H, W] has {coils} coil(s); a multi-coil file needs at "
                        "least 2 (single-coil data is [slices, H, W])")
    if min_size is not None and (h < min_size or w < min_size):
        raise DataError(f"{path}: image {h}x{w} is smaller than the pairing size {min_size}x{min_size} (--size)")
    info = VolumeInfo(path, n, h, w, False, "mask" in f, coils)
    info = replace(info, has_target=info.target_key in f)
    if coils and "reconstruction_esc" in f and not info.has_target:
        raise DataError(f"{path}: holds 'reconstruction_esc' but its k-space is multi-coil (expected "
                        f"'{info.target_key}', fastMRI's multi-coil target)")
    if info.has_target and coils:  # (single-coil: a target of another shape is ignored, as before)
        t = f[info.target_key]
        if not isinstance(t, h5py.Dataset) or t.ndim != 3 or int(t.shape[0]) != n:
            raise DataError(f"{path}: '{info.target_key}' has shape {tuple(getattr(t, 'shape', ()))}, expected "
                            f"[{n}, H, W] (one image per k-space slice)")
        if min_size is not None and min(int(t.shape[1]), int(t.shape[2])) < min_size:
            raise DataError(f"{path}: '{info.target_key}' is {t.shape[1]}x{t.shape[2]}, smaller than the size "
                            f"{min_size}x{min_size} (--size)")
    if "ismrmrd_header" in f:
        info = replace(info, padding=header_padding(path, f["ismrmrd_header"], w))
    if info.has_mask:
        check_mask(path, f["mask"], w)
    return info


def check_mask(path: Path, mask: h5py.Dataset, width: int) -> np.ndarray:
    """A file's own `mask` (fastMRI's test layout): one 0/1 per k-space column, at least one sampled; returned."""
    m = np.asarray(mask[()]).reshape(-1)
    if m.shape[0] != width:
        raise DataError(f"{path}: 'mask' has {m.shape[0]} columns, expected {width} (one per k-space column)")
    if not np.isin(m, (0, 1)).all() or not m.any():
        raise DataError(f"{path}: 'mask' must hold 0/1 per column with at least one sampled column")
    return m


def header_padding(path: Path, header: h5py.Dataset, width: int) -> tuple[int, int] | None:
    """The acquired k-space columns [left, right) that fastMRI derives from the ISMRMRD header (the columns
    outside are zero padding): left = encodedSpace y // 2 - kspace_encoding_step_1 center, right = left +
    maximum + 1; None when the header records no encoding limits. A clear error when the header is unreadable or
    its columns do not fit the k-space width."""
    import xml.etree.ElementTree as ET

    try:
        raw = header[()]
        root = ET.fromstring(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (ET.ParseError, UnicodeDecodeError, TypeError, ValueError) as e:
        raise DataError(f"{path}: 'ismrmrd_header' is not readable ISMRMRD XML ({e})") from None

    def find(*names: str):
        node = root
        for name in names:
            node = next((c for c in node.iter() if c.tag.rsplit("}", 1)[-1] == name), None)
            if node is None:
                return None
        return node

    if find("encodingLimits", "kspace_encoding_step_1") is None:
        return None

    def value(*names: str) -> int:
        node = root
        for name in names:  # namespace-agnostic: fastMRI's headers use the ISMRMRD namespace
            node = next((c for c in node.iter() if c.tag.rsplit("}", 1)[-1] == name), None)
            if node is None:
                raise DataError(f"{path}: 'ismrmrd_header' has no {'/'.join(names)}")
        try:
            return int(str(node.text).strip())
        except ValueError:
            raise DataError(f"{path}: 'ismrmrd_header' {'/'.join(names)} is {node.text!r}, expected an integer")\
                from None

    enc_y = value("encodedSpace", "matrixSize", "y")
    centre = value("encodingLimits", "kspace_encoding_step_1", "center")
    maximum = value("encodingLimits", "kspace_encoding_step_1", "maximum")
    left = enc_y // 2 - centre
    right = left + maximum + 1
    if not 0 <= left < right <= width:
        raise DataError(f"{path}: 'ismrmrd_header' puts the acquired columns at [{left}, {right}), outside the "
                        f"k-space's {width} columns (encodedSpace y {enc_y}, step_1 center {centre}, maximum "
                        f"{maximum})")
    return left, right


def inspect_volume(path: Path, min_size: int | None = None, check_values: bool = False) -> VolumeInfo:
    """Open and check one volume; with `check_values`, also reject NaN/Inf anywhere in k-space."""
    path = Path(path)
    with open_h5(path) as f:
        info = check_kspace(path, f, min_size)
        if check_values:
            for i in range(info.num_slices):
                check_finite(path, i, f["kspace"][i])
            if info.has_target:
                check_target(path, f[info.target_key][()], info.target_key)
    return info


def check_target(path: Path, target: np.ndarray, key: str = "reconstruction_esc") -> None:
    """Raise DataError if the reference image holds NaN or Inf (every metric of its volume would be NaN), or is all
    zero (the data range of PSNR and SSIM would be 0)."""
    bad = ~np.isfinite(target)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise DataError(f"{path}: '{key}' contains NaN or Inf ({int(bad.sum())} value(s), first at "
                        f"index {tuple(int(i) for i in where)}); its volume's metrics would be NaN")
    if not np.any(target):
        raise DataError(f"{path}: '{key}' is all zero; its volume's metrics cannot be scored (data range 0)")


def check_finite(path: Path, slice_index: int, kspace: np.ndarray) -> None:
    """Raise DataError if a k-space slice holds NaN or Inf."""
    if not np.isfinite(kspace).all():
        raise DataError(f"{path}: 'kspace' slice {slice_index} contains NaN or Inf")
    if not np.any(kspace):
        raise DataError(f"{path}: 'kspace' slice {slice_index} is all zero (nothing measured)")
