"""The offline demo dataset builder."""

import json

import h5py
import numpy as np
import pytest
import torch

from nas_recon.data import SliceDataset
from nas_recon.data.demo import build_demo
from nas_recon.errors import DataError
from nas_recon.physics import ifft2c


def check_layout(root, size):
    files = {split: sorted((root / split).glob("*.h5")) for split in ("train", "val", "test")}
    assert all(len(v) >= 1 for v in files.values()) and len(files["train"]) >= 2
    seen = {}
    for split, paths in files.items():
        for p in paths:
            with h5py.File(p) as f:
                k = f["kspace"][()]
                esc = f["reconstruction_esc"][()]
                assert k.dtype == np.complex64 and k.ndim == 3 and k.shape[1:] == (size, size)
                assert esc.dtype == np.float32 and esc.shape == k.shape
                np.testing.assert_allclose(ifft2c(torch.from_numpy(k)).abs().numpy(), esc, rtol=1e-5, atol=1e-10)
                assert f.attrs["max"] == pytest.approx(esc.max())
                assert f.attrs["norm"] == pytest.approx(np.linalg.norm(esc), rel=1e-5)
                assert f.attrs["acquisition"] and f.attrs["source"]
                # phase is not constant, so k-space is not Hermitian-symmetric
                herm = np.conj(np.flip(k[0], (0, 1)))
                assert np.abs(k[0, 1:, 1:] - herm[:-1, :-1]).max() > 0.1 * np.abs(k[0]).max()
                for z in f.attrs["source_slices"]:
                    assert z not in seen, "a source slice is in two files"
                    seen[int(z)] = split
    return files


def test_build_from_synthetic_nifti(tmp_path, nifti_file):
    out = tmp_path / "demo"
    manifest = build_demo(out, str(nifti_file), size=48, slices=20, seed=1)
    files = check_layout(out, 48)
    assert len(files["train"]) == 6 and len(files["val"]) == 2 and len(files["test"]) == 2
    assert json.loads((out / "manifest.json").read_text())["files"] == manifest["files"]
    ds = SliceDataset(out / "train", size=48)
    assert ds[0].input.shape == (2, 48, 48)
    # same seed -> same bytes; a rebuild without --force refuses
    out2 = tmp_path / "demo2"
    build_demo(out2, str(nifti_file), size=48, slices=20, seed=1)
    a = h5py.File(out / "train/demo_slab00.h5")["kspace"][()]
    assert np.array_equal(a, h5py.File(out2 / "train/demo_slab00.h5")["kspace"][()])
    with pytest.raises(DataError, match="not empty"):
        build_demo(out, str(nifti_file), size=48, slices=20)


def test_interrupted_build_leaves_nothing(tmp_path, nifti_file):
    out = tmp_path / "demo"

    def boom(i, n):
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_demo(out, str(nifti_file), size=48, slices=20, progress=boom)
    assert list(tmp_path.iterdir()) == [nifti_file]


def test_nifti_not_3d(tmp_path):
    import nibabel as nib

    p = tmp_path / "flat.nii"
    nib.save(nib.Nifti1Image(np.ones((10, 10), np.float32), np.eye(4)), str(p))
    with pytest.raises(DataError, match="expected 3-D"):
        build_demo(tmp_path / "o", str(p), size=32)
    q = tmp_path / "bad.nii"
    q.write_text("nope")
    with pytest.raises(DataError, match="not a readable NIfTI"):
        build_demo(tmp_path / "o", str(q), size=32)


@pytest.mark.realsource
def test_build_from_mni152(tmp_path):
    out = tmp_path / "demo"
    manifest = build_demo(out)
    files = check_layout(out, 320)
    # the head fills the frame like a scan: its bounding box spans ~90 % of the larger side
    recon = np.concatenate([h5py.File(p)["reconstruction_esc"][()] for p in files["train"]])
    fg = (recon > 0.1 * recon.max()).any(axis=0)
    ys, xs = np.nonzero(fg)
    assert 0.85 * 320 < max(np.ptp(ys) + 1, np.ptp(xs) + 1) <= 320
    assert manifest["foreground_fraction"] > 0.3 and manifest["zoom"] > 1.4
    total = sum(h5py.File(p)["kspace"].shape[0] for v in files.values() for p in v)
    assert total == 60
    size_mb = sum(p.stat().st_size for p in out.rglob("*")) / 2**20
    assert size_mb < 100
