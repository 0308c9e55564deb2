"""The slice dataset on tiny synthetic HDF5 fixtures, and every bad input."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import SIZE, write_volume

from nas_recon.data import SliceDataset, list_volumes, split_volumes
from nas_recon.errors import ConfigError, DataError
from nas_recon.physics import MaskSpec, center_crop, chan_to_complex, fft2c, ifft2c


def test_sample_layout_and_physics(volume_dir):
    ds = SliceDataset(volume_dir, size=SIZE, mode="train", seed=0)
    assert len(ds) == 12
    s = ds[4]
    assert s.input.shape == s.target.shape == s.kspace.shape == (2, SIZE, SIZE)
    assert s.mask.shape == (1, 1, SIZE)
    assert s.acceleration in (4.0, 8.0)
    # scaled so that max |x0| = 6, and x0 = ifft2c(mask * k)
    x0 = chan_to_complex(s.input)
    assert float(x0.abs().max()) == pytest.approx(6.0, rel=1e-5)
    torch.testing.assert_close(fft2c(x0), chan_to_complex(s.kspace), atol=1e-4, rtol=1e-4)
    k_full = fft2c(chan_to_complex(s.target))
    torch.testing.assert_close(k_full * s.mask[0], chan_to_complex(s.kspace), atol=1e-4, rtol=1e-4)
    # the target is the paper's pairing: centre crop of ifft2c(raw k-space), times the scale
    with h5py.File(volume_dir / s.file) as f:
        raw = torch.from_numpy(f["kspace"][s.slice])
        esc = f["reconstruction_esc"][s.slice]
    expected = center_crop(ifft2c(raw), SIZE, SIZE) * s.scale
    torch.testing.assert_close(chan_to_complex(s.target), expected, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(chan_to_complex(s.target).abs().numpy() / s.scale, esc, rtol=1e-4, atol=1e-9)
    assert s.max_value == pytest.approx(float(np.max(h5py.File(volume_dir / s.file)["reconstruction_esc"][()])))


def test_eval_masks_fixed_per_file_slice(volume_dir):
    a = SliceDataset(volume_dir, size=SIZE, mode="eval", seed=3)
    b = SliceDataset(volume_dir, size=SIZE, mode="eval", seed=3)
    assert len(a) == 24  # every slice at 4x and at 8x
    for i in (0, 1, 7):
        assert torch.equal(a[i].mask, b[i].mask) and a[i].acceleration == b[i].acceleration
    a.set_epoch(5)
    assert torch.equal(a[1].mask, b[1].mask)
    accs = sorted({a[i].acceleration for i in range(len(a))})
    assert accs == [4.0, 8.0]


def test_train_draws_deterministic_by_seed_and_epoch(volume_dir):
    a = SliceDataset(volume_dir, size=SIZE, crop=16, seed=1)
    b = SliceDataset(volume_dir, size=SIZE, crop=16, seed=1)
    assert all(torch.equal(a[i].target, b[i].target) and torch.equal(a[i].mask, b[i].mask) for i in range(4))
    masks0 = [a[i].mask for i in range(len(a))]
    a.set_epoch(1)
    masks1 = [a[i].mask for i in range(len(a))]
    assert any(not torch.equal(m0, m1) for m0, m1 in zip(masks0, masks1, strict=True))
    assert a[0].input.shape == (2, 16, 16)


def test_limits_and_volume_split(volume_dir):
    assert len(SliceDataset(volume_dir, size=SIZE, max_volumes=2)) == 6
    ds = SliceDataset(volume_dir, size=SIZE, max_slices=5)
    assert len(ds) == 5 and len({ds.slices[i][0] for i in range(5)}) == 4  # spread over the volumes
    files = list_volumes(volume_dir)
    w, a = split_volumes(files, 0.5, seed=0)
    assert set(w).isdisjoint(a) and sorted(w + a) == files
    assert split_volumes(files, 0.5, seed=0) == (w, a)


def test_loader_batches_samples(volume_dir):
    ds = SliceDataset(volume_dir, size=SIZE, mode="eval")
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch.input.shape == (3, 2, SIZE, SIZE) and batch.mask.shape == (3, 1, 1, SIZE)
    assert len(batch.file) == 3


def test_given_mask_mode_uses_the_whole_acquired_grid(tmp_path):
    """fastMRI test files: the mask is as wide as the k-space (368 there, 36 here), not as the 320 crop."""
    mask = np.zeros(36, dtype=bool)
    mask[::4] = True
    mask[16:20] = True
    write_volume(tmp_path / "t.h5", mask=mask)  # k-space 40 x 36
    s = SliceDataset(tmp_path, size=SIZE, mode="given")[0]
    assert torch.equal(s.mask.view(-1).bool(), torch.from_numpy(mask))
    assert s.input.shape == (2, 40, 36) and s.acceleration == pytest.approx(36 / mask.sum())
    with h5py.File(tmp_path / "t.h5") as f:
        k = torch.from_numpy(f["kspace"][0])
    measured = torch.complex(s.kspace[0], s.kspace[1]) / s.scale
    torch.testing.assert_close(measured, k * torch.from_numpy(mask.astype(np.float32)))  # exactly as measured
    (tmp_path / "narrow").mkdir()
    write_volume(tmp_path / "narrow" / "n.h5", mask=mask[:SIZE])  # as wide as the crop: not the file's grid
    with pytest.raises(DataError, match="'mask' has 32 columns, expected 36"):
        SliceDataset(tmp_path / "narrow", size=SIZE, mode="given")[0]
    with pytest.raises(DataError, match="no 'mask' dataset"):
        write_volume(tmp_path / "u.h5")
        SliceDataset([tmp_path / "u.h5"], size=SIZE, mode="given")


def write_raw(path: Path, **datasets) -> Path:
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f.create_dataset(k, data=v)
    return path


BAD_FILES = {
    "not_hdf5": (lambda p: p.write_text("hello"), "not an HDF5 file"),
    "missing_kspace": (lambda p: write_raw(p, image=np.zeros((1, 40, 40))), "missing dataset 'kspace'"),
    "real_kspace": (lambda p: write_raw(p, kspace=np.zeros((1, 40, 40), np.float32)), "expected complex"),
    "rank2": (lambda p: write_raw(p, kspace=np.zeros((40, 40), np.complex64)), "rank 2"),
    "multicoil": (
        lambda p: write_raw(p, kspace=np.zeros((1, 4, 40, 40), np.complex64)),
        r"multicoil.h5: multi-coil at 4x and --size 32: the fully sampled centre is 3 columns, ESPIRiT needs",
    ),
    "zero_slices": (lambda p: write_raw(p, kspace=np.zeros((0, 40, 40), np.complex64)), "zero slices"),
    "too_small": (lambda p: write_raw(p, kspace=np.zeros((1, 20, 40), np.complex64)), "smaller than the pairing size"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_name_the_file(tmp_path, case):
    make, message = BAD_FILES[case]
    path = tmp_path / f"{case}.h5"
    make(path)
    with pytest.raises(DataError, match=message) as e:
        SliceDataset(tmp_path, size=SIZE)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_truncated_file(tmp_path):
    good = write_volume(tmp_path / "good.h5")
    data = good.read_bytes()
    (tmp_path / "good.h5").unlink()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="truncated or corrupt"):
        SliceDataset(tmp_path, size=SIZE)


def test_nan_in_kspace(tmp_path):
    path = write_volume(tmp_path / "nan.h5")
    with h5py.File(path, "a") as f:
        k = f["kspace"][()]
        k[1, 3, 3] = np.nan
        f["kspace"][...] = k
    ds = SliceDataset(tmp_path, size=SIZE, mode="eval")
    with pytest.raises(DataError, match="slice 1 contains NaN or Inf"):
        ds[2]


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no .h5 files"):
        SliceDataset(tmp_path, size=SIZE)
    with pytest.raises(DataError, match="not found"):
        SliceDataset(tmp_path / "nope", size=SIZE)


def test_bad_options(volume_dir):
    with pytest.raises(ConfigError, match="unknown 'radial'"):
        SliceDataset(volume_dir, size=SIZE, masks=MaskSpec("radial"))
    with pytest.raises(ConfigError, match=">= 1"):
        SliceDataset(volume_dir, size=SIZE, masks=MaskSpec("random", (0.5,)))
    with pytest.raises(ConfigError, match="crop"):
        SliceDataset(volume_dir, size=SIZE, crop=64)


def test_crops_are_scaled_like_their_whole_slice(tmp_path):
    # a slice whose right half is empty: crops of the background must stay near zero, not be scaled up to 6
    img = np.zeros((64, 64), np.complex64)
    img[16:48, 4:28] = 1.0
    k = fft2c(torch.from_numpy(img)).numpy()[None]
    with h5py.File(tmp_path / "half.h5", "w") as f:
        f.create_dataset("kspace", data=k)
    full = SliceDataset(tmp_path, size=64, mode="eval", seed=0)[0]
    crops = SliceDataset(tmp_path, size=64, crop=16, mode="train", seed=0)
    for epoch in range(6):
        crops.set_epoch(epoch)
        s = crops[0]
        assert 0.5 < s.scale / full.scale < 2.0
        assert float(chan_to_complex(s.input).abs().max()) < 8.0


def test_in_memory_cache_gives_the_same_samples(volume_dir):
    masks = MaskSpec()
    cached = SliceDataset(volume_dir, SIZE, 16, masks, "train", 3)
    plain = SliceDataset(volume_dir, SIZE, 16, masks, "train", 3, cache_bytes=0)
    assert cached.cache_enabled and not plain.cache_enabled
    for epoch in (0, 1):
        cached.set_epoch(epoch)
        plain.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = cached[i], plain[i]
            assert torch.equal(a.input, b.input) and torch.equal(a.target, b.target)
    assert len(cached._cache) == len(cached.slices)  # every slice read once, then served from memory


def test_repeats_draw_distinct_crops_of_each_slice(volume_dir):
    ds = SliceDataset(volume_dir, SIZE, 8, MaskSpec(), "train", 0, repeats=3)
    n = len(ds.items)
    assert len(ds) == 3 * n
    a, b = ds[0], ds[n]
    assert (a.file, a.slice) == (b.file, b.slice)
    assert not torch.equal(a.target, b.target) or not torch.equal(a.mask, b.mask)
    with pytest.raises(ConfigError, match="repeats"):
        SliceDataset(volume_dir, SIZE, None, MaskSpec(), "eval", 0, repeats=2)
