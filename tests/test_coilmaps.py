"""Coil sensitivities as a dataset component: an estimator chosen by name (the registry's slot a learnt one plugs
into), its maps cached by content, the given-mask path through the same component, the choice recorded and kept."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nas_recon.data.coilmaps import CoilMaps
from nas_recon.data.dataset import SliceDataset
from nas_recon.data.demo import build_demo
from nas_recon.errors import ConfigError
from nas_recon.physics.coils import COIL_ESTIMATORS, CoilEstimator
from nas_recon.physics.fft import chan_to_complex
from nas_recon.physics.masks import MaskSpec
from nas_recon.physics.sense import sense_adjoint

SIZE = 160  # the smallest size whose 8x centre calibrates (the dataset checks it for every estimator)


@pytest.fixture(scope="module")
def mc(tmp_path_factory):
    out = tmp_path_factory.mktemp("coilmaps") / "data"
    build_demo(out, size=SIZE, slices=10, coils=4)
    return out


@pytest.fixture
def flat(monkeypatch):
    """A registered estimator whose maps are 1/sqrt(coils) everywhere; records the masks it was called with."""
    calls: list[np.ndarray] = []

    def estimate(kspace: np.ndarray, mask: np.ndarray) -> np.ndarray:
        calls.append(np.asarray(mask).copy())
        c, h, w = kspace.shape
        return np.full((c, h, w), 1 / np.sqrt(c), np.complex64)

    est = CoilEstimator("flat-test", "flat", "uniform maps (test)", estimate)
    monkeypatch.setitem(COIL_ESTIMATORS, est.name, est)
    return calls


def test_a_registered_estimator_is_chosen_by_name_and_its_maps_are_cached(mc, tmp_path, flat):
    maps_dir = tmp_path / "maps"
    ds = SliceDataset(mc / "val", SIZE, None, MaskSpec("random", (4,)), "eval", 0, maps_dir=maps_dir,
                      coil_estimator="flat-test")
    x = ds[0]
    s = chan_to_complex(x.maps)
    torch.testing.assert_close(s, torch.full_like(s, 0.5))  # 4 coils: 1/2 each
    torch.testing.assert_close(chan_to_complex(x.input), sense_adjoint(chan_to_complex(x.kspace), s, x.mask[0]))
    assert len(flat) == 1 and flat[0].shape == (SIZE,)
    files = [p.name for p in maps_dir.iterdir()]
    assert len(files) == 1 and "-4x-random-160-flat-" in files[0]  # the estimator's key names its cache files
    again = SliceDataset(mc / "val", SIZE, None, MaskSpec("random", (4,)), "eval", 0, maps_dir=maps_dir,
                         write_maps=False, coil_estimator="flat-test")
    torch.testing.assert_close(again[0].maps, x.maps)
    assert len(flat) == 1  # read back from the cache, not estimated again


def test_files_with_their_own_mask_take_their_maps_through_the_same_component(mc, tmp_path, flat):
    from nas_recon.data.undersample import undersample_folder

    under = tmp_path / "under"
    undersample_folder(mc, under, 4.0, "random", 0)
    maps_dir = tmp_path / "maps"
    ds = SliceDataset(under / "val", SIZE, mode="given", maps_dir=maps_dir, coil_estimator="flat-test")
    x = ds[0]
    s = chan_to_complex(x.maps)
    torch.testing.assert_close(s, torch.full_like(s, 0.5))
    assert len(flat) == 1 and np.array_equal(flat[0].astype(bool), x.mask[0, 0].numpy().astype(bool))
    assert [p.name for p in maps_dir.iterdir()][0].count("-given-") == 1


def test_an_unknown_or_unavailable_estimator_is_refused_naming_the_flag(mc, data_root, monkeypatch):
    with pytest.raises(ConfigError, match="--coil-estimator: unknown 'learnt', expected one of auto, espirit-"):
        SliceDataset(mc / "val", SIZE, mode="eval", coil_estimator="learnt")
    with pytest.raises(ConfigError, match="--coil-estimator: unknown"):
        CoilMaps("learnt")
    monkeypatch.setitem(COIL_ESTIMATORS, "absent-test", CoilEstimator(
        "absent-test", "absent", "needs a tool this machine lacks", lambda k, m: k, lambda: False))
    with pytest.raises(ConfigError, match="--coil-estimator: 'absent-test' is not available on this machine"):
        SliceDataset(mc / "val", SIZE, mode="eval", coil_estimator="absent-test")
    # single-coil data needs no maps: the estimator is never asked for
    assert len(SliceDataset(data_root / "val", 32, mode="eval", coil_estimator="absent-test")) > 0


def test_a_retrain_records_its_estimator_keeps_it_on_resume_and_is_evaluated_with_it(mc, tmp_path, flat):
    from nas_recon.evaluate.scoring import predictor_for
    from nas_recon.report.build import evaluate_run, read_run
    from nas_recon.train.config import RetrainConfig
    from nas_recon.train.recipe import load_recipe, with_overrides
    from nas_recon.train.retrain import run_retrain

    recipe = with_overrides(load_recipe("quick"), {"epochs": 1, "crop": 32, "max_slices": 2, "val_max_slices": 1},
                            "test")
    out = tmp_path / "run"
    cfg = RetrainConfig(str(mc), str(out), recipe, model="dccnn-1", size=SIZE, device="cpu",
                        coil_estimator="flat-test")
    run_retrain(cfg)
    record = json.loads((out / "run.json").read_text())
    assert record["coil_estimator"] == "flat-test" and record["maps"] == "uniform maps (test)"
    _, info = predictor_for(str(out / "best.pt"), None, "cpu")
    assert info["coil_estimator"] == "flat-test"
    before = len(flat)
    res = evaluate_run(read_run(out), mc / "test", SIZE, None, 1, "cpu", 0, maps_dir=tmp_path / "tmaps")
    assert set(res["aggregate"]) == {"4x", "8x"} and len(flat) > before  # the test slices' maps: its estimator
    assert all("-flat-" in p.name for p in (tmp_path / "tmaps").iterdir())
    with pytest.raises(ConfigError, match="setting 'coil_estimator' was 'flat-test', now 'auto'"):
        run_retrain(RetrainConfig(str(mc), str(out), recipe, model="dccnn-1", size=SIZE, device="cpu"), resume=True)
