"""Multi-coil groundwork (issue 22): RSS, the calibration region, ESPIRiT against known maps, the simulated
multi-coil demo files, and `data check` / the training commands on multi-coil input."""

import json
import re
import shutil

import h5py
import numpy as np
import pytest
import torch

from nas_recon.cli.main import main
from nas_recon.data.demo import build_demo
from nas_recon.errors import ConfigError, DataError
from nas_recon.physics import bart
from nas_recon.physics.coils import acs_width, birdcage, espirit_maps, map_agreement, rss
from nas_recon.physics.fft import ifft2c
from nas_recon.physics.masks import make_mask


def demo_folder(tmp_path_factory, name: str, size: int, coils: int):
    out = tmp_path_factory.mktemp(name) / "data"
    build_demo(out, size=size, slices=10, coils=coils)
    return out


@pytest.fixture(scope="module")
def mc_demo(tmp_path_factory):
    return demo_folder(tmp_path_factory, "mc", 128, 8)


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


@pytest.mark.parametrize("backend", ["sigpy", pytest.param("bart", marks=pytest.mark.skipif(
    not bart.available(), reason="BART not on PATH"))])
def test_espirit_recovers_the_simulated_maps_from_undersampled_kspace(mc_demo, backend):
    """4x, fastMRI's random mask (8 % centre = 10 of 128 columns): ESPIRiT's coil vectors are parallel to the
    birdcage maps' inside the object, up to ESPIRiT's per-pixel phase and norm: median per-pixel |cos| >= 0.999
    (measured 0.99997 with sigpy, 0.99955 with BART's ecalib); wrong maps score lower (uniform maps 0.95,
    conjugated 0.90, rotated 0.83: smooth arrays are alike, hence the tight bound)."""
    with h5py.File(sorted((mc_demo / "train").glob("*.h5"))[0]) as f:
        k, target = f["kspace"][0], f["reconstruction_rss"][0]
    m = make_mask(128, 4, None, "random", np.random.default_rng(0)).astype(np.complex64)
    est = espirit_maps(k * m, m.real, backend=backend)
    assert est.shape == (8, 128, 128) and est.dtype == np.complex64
    inside = target > 0.1 * target.max()
    truth = birdcage(8, 128, 128)
    assert map_agreement(est, truth, inside) >= 0.999
    # the maps cover the object: pixels above 5 % of the RSS max with nonzero maps (measured 0.982 sigpy, 0.984
    # BART at its crop 0.7; BART at sigpy's crop 0.95 covered 0.78, which cost TV 9.6 dB on the 8-coil demo)
    assert (np.abs(est).sum(0) > 0)[target > 0.05 * target.max()].mean() >= 0.95
    for wrong in (np.ones_like(est), np.conj(est), np.rot90(est, 1, axes=(1, 2))):
        assert map_agreement(wrong, truth, inside) < 0.99
    with pytest.raises(DataError, match="at least 6 columns; the mask has 5"):
        m8 = make_mask(128, 8, None, "random", np.random.default_rng(0))
        espirit_maps(k * m8, m8, backend=backend)


def test_data_check_reports_multicoil_and_a_narrow_centre_is_refused_before_any_work(mc_demo, tmp_path, capsys):
    assert main(["data", "check", str(mc_demo / "train"), "--size", "128"]) == 0
    assert "(multi-coil, 8 coils)" in capsys.readouterr().out
    out = tmp_path / "run"  # 8x at 128: a 5-column centre, too narrow for ESPIRiT
    assert main(["retrain", "--model", "dccnn-1", "--data", str(mc_demo), "--out", str(out), "--size", "128"]) == 2
    err = capsys.readouterr().err.strip()
    assert "multi-coil at 8x and --size 128: the fully sampled centre is 5 columns" in err and "\n" not in err
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


# --- the multi-coil path end to end (issue 22): transform, SENSE fusion, models, commands ---

@pytest.fixture(scope="module")
def mc160(tmp_path_factory):
    """4 coils at 160 x 160: the smallest size whose 8x centre (6 columns) ESPIRiT calibrates on."""
    return demo_folder(tmp_path_factory, "mc160", 160, 4)


def test_single_coil_samples_are_unchanged():
    """Golden: the single-coil transform's outputs (train crops and eval slices: input, target, k-space, mask,
    scale, volume max, acceleration, file and slice) equal those of the code before the multi-coil transform
    existed (commit baeaae5; tests/data/make_golden_single_coil.py wrote them).

    What is pinned, and how: masks, accelerations, files and slices exactly (integer draws from seeded
    generators, the same on every machine); the float tensors within 1e-4 and the scale and volume max within a
    relative 1e-5. The two CPU kinds of the project (Intel with AVX-512, AMD EPYC) round FFTs differently in the
    last bits, so a bit-for-bit hash held on one kind only; 1e-4 on values of order 1-50 is far below anything a
    change of the transform (a crop, a scale, a mask or a shift) would move.
    """
    import sys
    from pathlib import Path

    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent / "data"))
    from make_golden_single_coil import GOLDEN, golden_arrays

    now = golden_arrays()
    with np.load(GOLDEN) as stored:
        golden = {k: stored[k] for k in stored.files}
    assert sorted(now) == sorted(golden)
    for key, want in golden.items():
        got = now[key]
        assert got.shape == want.shape, key
        if key.endswith(("_mask", "_acceleration", "_where")):
            assert np.array_equal(got, want), key
        elif key.endswith(("_scale", "_max_value")):
            assert np.allclose(got, want, rtol=1e-5, atol=0), key
        else:
            assert np.allclose(got, want, rtol=0, atol=1e-4), (key, float(np.abs(got - want).max()))


def test_multicoil_sample_is_the_sense_model_with_the_rss_target(mc160, tmp_path, monkeypatch):
    from nas_recon.data.dataset import SliceDataset
    from nas_recon.physics.fft import chan_to_complex
    from nas_recon.physics.masks import MaskSpec
    from nas_recon.physics.sense import sense_adjoint

    ds = SliceDataset(mc160 / "val", 160, None, MaskSpec("random", (4, 8)), "eval", 0, maps_dir=tmp_path / "maps")
    x = ds[1]  # slice 0 at 8x
    assert x.multicoil and x.kspace.shape == (4, 2, 160, 160) and x.maps.shape == (4, 2, 160, 160)
    assert x.input.shape == x.target.shape == (2, 160, 160) and x.acceleration == 8
    k, s = chan_to_complex(x.kspace), chan_to_complex(x.maps)
    torch.testing.assert_close(chan_to_complex(x.input), sense_adjoint(k, s, x.mask[0]))  # A^H k
    assert torch.all(k[..., x.mask[0, 0] == 0] == 0)  # unsampled columns are zero
    with h5py.File(ds.volumes[0].path) as f:  # target magnitude = fastMRI's reconstruction_rss
        rss_file = f["reconstruction_rss"][0]
    np.testing.assert_allclose(chan_to_complex(x.target).abs().numpy() / x.scale, rss_file, rtol=2e-4, atol=1e-9)
    with h5py.File(ds.volumes[0].path) as f:
        assert x.max_value == pytest.approx(float(f["reconstruction_rss"][()].max()))  # the volume's RSS max
    norm = (s.abs() ** 2).sum(0)  # ESPIRiT maps: unit norm over coils inside the support, 0 outside
    assert torch.allclose(norm[norm > 0.5], torch.ones(()), atol=1e-3)
    cached = sorted(p.name for p in (tmp_path / "maps").iterdir())
    name = rf"{ds.volumes[0].path.stem}-0-8x-random-160-(bart|sigpy)-[0-9a-f]{{12}}\.npy"
    assert len(cached) == 1 and re.fullmatch(name, cached[0])  # one per (file content, slice, acceleration)
    # a DDP rank other than 0 reads the cache and writes nothing
    again = SliceDataset(mc160 / "val", 160, None, MaskSpec("random", (4, 8)), "eval", 0, maps_dir=tmp_path / "maps",
                         write_maps=False)
    with monkeypatch.context() as mp:  # read back, not computed again
        mp.setattr("nas_recon.data.coilmaps.CoilMaps.estimate", lambda *a, **k: pytest.fail("maps computed again"))
        torch.testing.assert_close(again[1].maps, x.maps)
    other = SliceDataset(mc160 / "val", 160, None, MaskSpec("random", (4, 8)), "eval", 0, maps_dir=tmp_path / "m2",
                         write_maps=False)
    torch.testing.assert_close(other[1].maps, x.maps)  # computed in memory, the same maps
    assert not (tmp_path / "m2").exists()
    crops = SliceDataset(mc160 / "train", 160, 48, MaskSpec("random", (4, 8)), "train", 0)
    c = crops[0]
    assert c.kspace.shape == (4, 2, 48, 48) and c.maps.shape == (4, 2, 48, 48) and c.mask.shape == (1, 1, 48)


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_a_maps_dir_that_cannot_hold_maps_is_refused_before_any_work(mc160, tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    maps = blocker if where == "file" else blocker / "maps"
    out = tmp_path / "run"
    assert main(["retrain", "--model", "dccnn-1", "--data", str(mc160), "--out", str(out), "--size", "160",
                 "--maps-dir", str(maps), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(maps) in err and "maps folder (--maps-dir)" in err and "\n" not in err
    assert not out.exists() and blocker.read_text() == "not a folder"


def test_bad_maps_and_mixed_coil_counts_get_one_line(mc160, tmp_path):
    from nas_recon.data.dataset import SliceDataset
    from nas_recon.physics.masks import MaskSpec

    maps = tmp_path / "maps"
    ds = SliceDataset(mc160 / "val", 160, None, MaskSpec("random", (4,)), "eval", 0, maps_dir=maps)
    ds[0]
    name = next(maps.iterdir()).name
    np.save(maps / name, np.zeros((3, 160, 160), np.complex64))
    ds = SliceDataset(mc160 / "val", 160, None, MaskSpec("random", (4,)), "eval", 0, maps_dir=maps)
    with pytest.raises(DataError, match=rf"{name}: sensitivity maps of shape \(3, 160, 160\) \(complex64\), "
                                        r"expected \(4, 160, 160\) complex64; delete the file"):
        ds[0]
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(sorted((mc160 / "train").glob("*.h5"))[0], folder / "a.h5")
    build_demo(tmp_path / "six", size=160, slices=10, coils=6)
    shutil.copy(sorted((tmp_path / "six" / "train").glob("*.h5"))[0], folder / "b.h5")
    with pytest.raises(DataError, match=r"volumes with different coil counts in one set \(a.h5: 4 coil\(s\), "
                                        r"b.h5: 6\)"):
        SliceDataset(folder, 160, None, MaskSpec("random", (4,)), "eval", 0)


def test_multicoil_fusion_rules():
    """Hard rule: one coil with unit maps is today's fusion; with orthonormal maps a consistent image is a fixed
    point. Soft rule through the module: one coil, unit maps = the closed form (CG, MoDL's DC layer)."""
    from nas_recon.physics.fft import chan_to_complex, complex_to_chan, fft2c
    from nas_recon.physics.fusion import KSpaceFusion

    g = torch.Generator().manual_seed(3)
    x, k0 = torch.randn(2, 2, 12, 10, generator=g), torch.randn(2, 2, 12, 10, generator=g)
    mask = (torch.rand(2, 1, 1, 10, generator=g) > 0.5).float()
    k0 = k0 * mask
    unit = complex_to_chan(torch.ones(2, 1, 12, 10, dtype=torch.complex64))
    for fusion in (KSpaceFusion(), KSpaceFusion(4.0), KSpaceFusion(0.5, learnable=True)):
        torch.testing.assert_close(fusion(x, k0.unsqueeze(1), mask, unit), fusion(x, k0, mask), rtol=1e-4, atol=1e-5)
    s = torch.randn(2, 3, 12, 10, generator=g, dtype=torch.complex64)
    s = s / (s.abs() ** 2).sum(1, keepdim=True).sqrt()  # sum_c |S_c|^2 = 1
    z = torch.randn(2, 12, 10, generator=g, dtype=torch.complex64)
    kz = mask * fft2c(s * z.unsqueeze(1))  # the measurement of z itself
    out = KSpaceFusion()(complex_to_chan(z), complex_to_chan(kz), mask, complex_to_chan(s))
    torch.testing.assert_close(chan_to_complex(out), z, rtol=1e-4, atol=1e-5)


def test_varnet_is_fastmris_layout_and_runs_on_both_kinds():
    from nas_recon.models.registry import ModelSpec, build_model, count_params
    from nas_recon.models.varnet import centre_lines

    big = build_model(ModelSpec("varnet"))
    assert len(big.cascades) == 12 and count_params(big) == 29_936_966  # fastMRI's VarNet(): ~30 M
    m = torch.tensor([1, 0, 1, 1, 1, 1, 0, 1.0]).view(1, 1, 1, 8)
    assert centre_lines(m).flatten().tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    net = build_model(ModelSpec("varnet-small"))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 24, 24, generator=g)
    mask = torch.zeros(2, 1, 1, 24)
    mask[..., 9:15] = 1
    single = net(x, torch.randn(2, 2, 24, 24, generator=g) * mask, mask)
    multi = net(x, torch.randn(2, 5, 2, 24, 24, generator=g) * mask.unsqueeze(1), mask, torch.randn(2, 5, 2, 24, 24))
    assert single.shape == multi.shape == (2, 2, 24, 24) and torch.isfinite(multi).all()


def test_multicoil_folder_goes_through_every_command(mc160, tmp_path, capsys):
    """retrain, evaluate, reconstruct, search on a multi-coil folder; a multi-coil network on single-coil data is
    refused in one line with nothing written."""
    from conftest import write_volume

    args = ["--data", str(mc160), "--size", "160", "--device", "cpu"]
    run = tmp_path / "r"
    assert main(["retrain", "--model", "dccnn-1", *args, "--out", str(run), "--recipe", "quick", "--epochs", "1",
                 "--crop", "32"]) == 0
    record = json.loads((run / "run.json").read_text())
    assert record["coils"] == 4 and record["maps"].startswith("ESPIRiT") and any((run / "maps").iterdir())
    m = tmp_path / "m.json"
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(mc160 / "test"), "--size", "160",
                 "--out", str(m)]) == 0
    agg = json.loads(m.read_text())["aggregate"]
    assert set(agg) == {"4x", "8x"} and all(agg[a]["psnr"]["mean"] > 15 for a in agg)
    rec = tmp_path / "rec"
    assert main(["reconstruct", "--checkpoint", str(run / "best.pt"), "--input", str(mc160 / "test"), "--out",
                 str(rec), "--size", "160"]) == 0
    with h5py.File(sorted(rec.glob("*.h5"))[0]) as f:
        assert f["reconstruction"].shape[1:] == (160, 160)
    # fastMRI's multi-coil test layout: undersampled k-space with its own 'mask', no target
    own = tmp_path / "own"
    own.mkdir()
    with h5py.File(sorted((mc160 / "test").glob("*.h5"))[0]) as f:
        k, truth = f["kspace"][()], f["reconstruction_rss"][()]
    m = make_mask(160, 4, None, "random", np.random.default_rng(3)).astype(np.float32)
    with h5py.File(own / "test_file.h5", "w") as f:
        f["kspace"], f["mask"] = (k * m).astype(np.complex64), m
    assert main(["reconstruct", "--checkpoint", str(run / "best.pt"), "--input", str(own), "--out",
                 str(rec), "--size", "160"]) == 0
    with h5py.File(rec / "test_file.h5") as f:
        got = f["reconstruction"][()]
        assert got.shape == truth.shape and f.attrs["mask"] == "from file"
        assert f.attrs["acceleration"] == pytest.approx(160 / m.sum())
    rel = np.linalg.norm(got - truth) / np.linalg.norm(truth)  # in the file's own intensity units
    assert rel < 0.3, rel
    single = tmp_path / "single"
    single.mkdir()
    write_volume(single / "s.h5", h=160, w=160)
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(single), "--size", "160",
                 "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "trained on multi-coil (4 coils) data" in err and "single-coil" in err and "\n" not in err
    assert not bad.exists()
    ts = tmp_path / "net.pt"
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--format", "torchscript", "--out", str(ts)]) == 2
    assert "multi-coil data (4 coils); TorchScript exports are single-coil" in capsys.readouterr().err
    assert not ts.exists()
    onnx_file = tmp_path / "net.onnx"
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--format", "onnx", "--out", str(onnx_file),
                 "--size", "160"]) == 0
    import onnx

    assert [i.name for i in onnx.load(str(onnx_file)).graph.input] == ["input", "kspace", "mask", "maps"]
    s = tmp_path / "s"
    assert main(["search", *args, "--out", str(s), "--epochs", "1", "--crop", "32", "--batch-size", "2"]) == 0
    assert json.loads((s / "run.json").read_text())["coils"] == 4 and (s / "genotype.json").is_file()


def test_soft_dc_trains_through_cg_and_is_recorded(mc160, tmp_path, capsys):
    from nas_recon.engine.checkpoint import model_from_checkpoint

    run = tmp_path / "soft"
    assert main(["retrain", "--model", "modl-1", "--soft-dc", "--cg-iterations", "3", "--data", str(mc160),
                 "--size", "160", "--out", str(run), "--recipe", "quick", "--epochs", "1", "--crop", "32",
                 "--max-slices", "2", "--device", "cpu"]) == 0
    model, spec, _ = model_from_checkpoint(run / "best.pt")
    assert spec.learnable_lam and spec.cg_iterations == 3
    lams = [float(f.current_lam().detach()) for f in model.fusions]
    assert all(lam != 1.0 for lam in lams)  # the learnt weights moved from their start
    assert main(["retrain", "--model", "unet", "--soft-dc", "--data", str(mc160), "--size", "160", "--out",
                 str(tmp_path / "u")]) == 2
    assert "'unet' has no k-space fusion to soften" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()


HEADER = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>
<encodedSpace><matrixSize><x>{x}</x><y>{y}</y><z>1</z></matrixSize></encodedSpace>
<reconSpace><matrixSize><x>32</x><y>32</y><z>1</z></matrixSize></reconSpace>
<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>{maximum}</maximum><center>{center}</center>
</kspace_encoding_step_1></encodingLimits></encoding></ismrmrdHeader>"""


@pytest.mark.parametrize("fields, expect", [
    (dict(x=64, y=40, maximum=29, center=15), (5, 35)),  # fastMRI's rule: y // 2 - center, + maximum + 1
    (dict(x=64, y=40, maximum=39, center=20), (0, 40)),  # nothing padded
    (dict(x=64, y=40, maximum=45, center=15), "acquired columns at \\[5, 51\\), outside the k-space's 40 columns"),
    (dict(x=64, y="forty", maximum=29, center=15), "encodedSpace/matrixSize/y is 'forty', expected an integer"),
    (None, "not readable ISMRMRD XML"),
])
def test_header_padding_is_read_and_checked(tmp_path, capsys, fields, expect):
    from conftest import write_volume

    path = tmp_path / "v.h5"
    write_volume(path, h=40, w=40)
    with h5py.File(path, "a") as f:
        f["ismrmrd_header"] = HEADER.format(**fields).encode() if fields else b"<ismrmrdHeader><encoding>"
    code = main(["data", "check", str(path), "--size", "32"])
    out = capsys.readouterr()
    if isinstance(expect, tuple):
        from nas_recon.data.hdf5 import inspect_volume

        assert code == 0 and inspect_volume(path).padding == expect
        assert ("zero-padded k-space columns" in out.out) == (expect != (0, 40))
    else:
        assert code == 2 and str(path) in out.err and re.search(expect, out.err) and "\n" not in out.err.strip()


def test_mixup_on_multicoil_data_is_refused_before_anything_is_written(mc160, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["retrain", "--model", "dccnn-1", "--data", str(mc160), "--out", str(out), "--size", "160",
                 "--mixup", "0.4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--mixup" in err and "4-coil" in err and "\n" not in err and not out.exists()


def test_dircn_trains_and_evaluates_through_the_sense_path(mc160, tmp_path):
    """DIRCN joins the cascade family on multi-coil data: the ESPIRiT maps' SENSE operator in every (soft, CG)
    data consistency, the RSS of the last data-consistent coil images as its output."""
    run = tmp_path / "r"
    args = ["--data", str(mc160), "--size", "160", "--device", "cpu"]
    assert main(["retrain", "--model", "dircn-small", *args, "--out", str(run), "--recipe", "quick", "--epochs", "1",
                 "--crop", "32", "--max-slices", "4"]) == 0
    assert json.loads((run / "run.json").read_text())["coils"] == 4
    m = tmp_path / "m.json"
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(mc160 / "test"), "--size", "160",
                 "--max-slices", "2", "--out", str(m)]) == 0
    agg = json.loads(m.read_text())["aggregate"]
    assert all(np.isfinite(agg[a]["psnr"]["mean"]) and agg[a]["psnr"]["mean"] > 10 for a in agg)
