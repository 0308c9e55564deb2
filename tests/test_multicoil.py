"""Multi-coil groundwork (issue 22): RSS, the calibration region, ESPIRiT against known maps, the simulated
multi-coil demo files, and `data check` / the training commands on multi-coil input."""

import re
import shutil

import h5py
import numpy as np
import pytest
import torch

from nas_recon.cli.main import main
from nas_recon.data.demo import build_demo
from nas_recon.errors import ConfigError, DataError
from nas_recon.physics.coils import acs_width, birdcage, espirit_maps, map_agreement, rss
from nas_recon.physics.fft import ifft2c
from nas_recon.physics.masks import make_mask


@pytest.fixture(scope="module")
def mc_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("mc") / "data"
    build_demo(out, size=128, slices=10, coils=8)
    return out


def test_rss_is_fastmris_definition():
    x = torch.tensor([[3 + 4j, 1j], [0, 2]], dtype=torch.complex64)  # [coils=2, 2 pixels] as [C, 1, 2] below
    got = rss(x[:, None, :], dim=0)
    want = torch.tensor([[np.sqrt(25 + 0), np.sqrt(1 + 4)]], dtype=torch.float32)
    torch.testing.assert_close(got, want)
    real = torch.randn(4, 3, 5)
    torch.testing.assert_close(rss(real, 0), torch.sqrt((real**2).sum(0)))  # fastMRI's fastmri.rss on real input


@pytest.mark.parametrize("mask, width", [([0, 1, 1, 1, 1, 0, 1, 0], 4), ([1, 0, 0, 0, 0, 0, 0, 1], 0),
                                         ([1] * 8, 8), ([0, 0, 0, 1, 1, 0, 0, 0], 2)])
def test_calibration_width_is_the_sampled_run_through_the_centre(mask, width):
    assert acs_width(np.array(mask)) == width


def test_demo_files_are_fastmri_multicoil_with_rss_targets(mc_demo):
    files = sorted((mc_demo / "train").glob("*.h5"))
    with h5py.File(files[0]) as f:
        k, target = f["kspace"][()], f["reconstruction_rss"][()]
        assert k.dtype == np.complex64 and k.ndim == 4 and k.shape[1] == 8 and "reconstruction_esc" not in f
    images = ifft2c(torch.from_numpy(k))
    torch.testing.assert_close(torch.from_numpy(target), rss(images, 1), rtol=1e-5, atol=1e-9)


def test_espirit_recovers_the_simulated_maps_from_undersampled_kspace(mc_demo):
    """4x, fastMRI's random mask (8 % centre = 10 of 128 columns): ESPIRiT's coil vectors are parallel to the
    birdcage maps' inside the object, up to ESPIRiT's per-pixel phase and norm: median per-pixel |cos| >= 0.999
    (measured 0.99991, i.e. 1.4 % vector error); wrong maps score lower (uniform maps 0.95, conjugated 0.90,
    rotated 0.83: smooth arrays are alike, hence the tight bound)."""
    with h5py.File(sorted((mc_demo / "train").glob("*.h5"))[0]) as f:
        k, target = f["kspace"][0], f["reconstruction_rss"][0]
    m = make_mask(128, 4, None, "random", np.random.default_rng(0)).astype(np.complex64)
    est = espirit_maps(k * m, m.real)
    assert est.shape == (8, 128, 128) and est.dtype == np.complex64
    inside = target > 0.1 * target.max()
    truth = birdcage(8, 128, 128)
    assert map_agreement(est, truth, inside) >= 0.999
    for wrong in (np.ones_like(est), np.conj(est), np.rot90(est, 1, axes=(1, 2))):
        assert map_agreement(wrong, truth, inside) < 0.99
    with pytest.raises(DataError, match="at least 6 columns; the mask has 5"):
        m8 = make_mask(128, 8, None, "random", np.random.default_rng(0))
        espirit_maps(k * m8, m8)


def test_data_check_reports_multicoil_and_training_refuses_it(mc_demo, tmp_path, capsys):
    assert main(["data", "check", str(mc_demo / "train"), "--size", "128"]) == 0
    assert "(multi-coil, 8 coils)" in capsys.readouterr().out
    out = tmp_path / "run"
    assert main(["retrain", "--model", "dccnn-1", "--data", str(mc_demo), "--out", str(out), "--size", "128"]) == 2
    err = capsys.readouterr().err.strip()
    assert "multi-coil volume (8 coils)" in err and "not built yet" in err and "\n" not in err
    assert not out.exists()


def broken(tmp_path, mc_demo, edit):
    src = sorted((mc_demo / "train").glob("*.h5"))[0]
    dst = tmp_path / "bad.h5"
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        edit(f)
    return dst


@pytest.mark.parametrize("edit, message", [
    (lambda f: (f.__delitem__("kspace"), f.create_dataset("kspace", data=np.ones((2, 1, 128, 128), np.complex64))),
     "has 1 coil"),
    (lambda f: (f.__delitem__("reconstruction_rss"), f.create_dataset("reconstruction_rss",
                                                                       data=np.ones((3, 128, 128), np.float32))),
     r"'reconstruction_rss' has shape \(3, 128, 128\), expected \[\d, H, W\]"),
    (lambda f: f.move("reconstruction_rss", "reconstruction_esc"),
     "holds 'reconstruction_esc' but its k-space is multi-coil"),
    (lambda f: f["reconstruction_rss"].__setitem__((0, 5, 5), np.nan), "'reconstruction_rss' contains NaN"),
])
def test_bad_multicoil_files_get_one_line(tmp_path, mc_demo, capsys, edit, message):
    bad = broken(tmp_path, mc_demo, edit)
    assert main(["data", "check", str(bad), "--size", "128"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "\n" not in err
    assert re.search(message, err), err


def test_a_folder_of_both_kinds_is_refused(tmp_path, mc_demo, capsys):
    from conftest import write_volume

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(sorted((mc_demo / "train").glob("*.h5"))[0], folder / "b_multi.h5")
    write_volume(folder / "a_single.h5", h=128, w=128)
    assert main(["data", "check", str(folder), "--size", "128"]) == 2
    assert "multi-coil, but a_single.h5 in the same folder is single-coil" in capsys.readouterr().err


def test_demo_coil_count_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="coils: expected 0 .single-coil. or 2 to 32, got 1"):
        build_demo(tmp_path / "d", size=64, slices=10, coils=1)
