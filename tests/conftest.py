"""Tiny synthetic fastMRI-style fixtures, made at test time (never committed)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from nas_recon.physics.fft import fft2c

SIZE = 32  # pairing crop used by the fixtures

EXAMPLE = {
    "format": "nas-recon-genotype", "version": 1, "space": "paper_a",
    "channels": 32, "cells": 3, "cascades": 3, "nodes": 3,
    "cell": [{"inputs": [0, 1], "ops": ["sep_conv_3x3", "dil_2_conv_3x3"]},
             {"inputs": [1, 2], "ops": ["dil_2_conv_3x3", "dil_3_conv_3x3"]},
             {"inputs": [0, 3], "ops": ["sep_conv_3x3", "dil_3_conv_3x3"]}],
}


def phantom(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth complex image with a few ellipses and a smooth phase."""
    y, x = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    img = np.zeros((h, w))
    for _ in range(4):
        cx, cy, rx, ry = rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.5)
        img += rng.uniform(0.3, 1.0) * (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1)
    phase = rng.uniform(-1, 1) + 0.5 * x + 0.3 * y
    return (img * np.exp(1j * phase)).astype(np.complex64)


def write_volume(path: Path, slices: int = 3, h: int = 40, w: int = 36, seed: int = 0, **extra) -> Path:
    """A single-coil fastMRI-style file with kspace [slices, h, w] and reconstruction_esc."""
    rng = np.random.default_rng(seed)
    imgs = np.stack([phantom(h, w, rng) * 1e-4 for _ in range(slices)])
    k = fft2c(torch.from_numpy(imgs)).numpy().astype(np.complex64)
    recon = np.abs(imgs[:, (h - SIZE) // 2 : (h - SIZE) // 2 + SIZE, (w - SIZE) // 2 : (w - SIZE) // 2 + SIZE])
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=k)
        f.create_dataset("reconstruction_esc", data=recon.astype(np.float32))
        f.attrs["max"] = float(recon.max())
        f.attrs["norm"] = float(np.linalg.norm(recon))
        f.attrs["acquisition"] = "CORPD_FBK"
        for key, val in extra.items():
            f.create_dataset(key, data=val)
    return path


@pytest.fixture
def volume_dir(tmp_path: Path) -> Path:
    """A folder with 4 tiny volumes of 3 slices."""
    d = tmp_path / "vols"
    d.mkdir()
    for i in range(4):
        write_volume(d / f"vol{i}.h5", seed=i)
    return d


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """train/ val/ test/ folders of tiny volumes."""
    root = tmp_path / "data"
    for s, (split, n) in enumerate((("train", 4), ("val", 1), ("test", 1))):
        (root / split).mkdir(parents=True)
        for i in range(n):  # a stable seed per file (hash() of a str is salted per process)
            write_volume(root / split / f"{split}{i}.h5", slices=2, seed=100 * s + i)
    return root


@pytest.fixture
def nifti_file(tmp_path: Path) -> Path:
    """A small synthetic 3-D NIfTI 'head' (an ellipsoid with structure)."""
    import nibabel as nib

    z, y, x = np.meshgrid(np.linspace(-1, 1, 30), np.linspace(-1, 1, 28), np.linspace(-1, 1, 40), indexing="ij")
    vol = ((x / 0.8) ** 2 + (y / 0.9) ** 2 + (z / 0.9) ** 2 < 1).astype(np.float32) * 100
    vol += 50 * ((x**2 + y**2) < 0.1)
    vol = np.transpose(vol, (2, 1, 0))  # x, y, z with axial slices last
    path = tmp_path / "head.nii.gz"
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(path))
    return path
