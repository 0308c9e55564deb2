"""SSDU self-supervision (issue 31): the Theta/Lambda split, its samples and loss (physics identities), retraining
on undersampled files alone, and its refusals."""

import csv
import json

import h5py
import numpy as np
import pytest
import torch
from conftest import SIZE
from test_selection import TINY_RECIPE
from torch.utils.data import default_collate

from nas_recon.cli.main import main
from nas_recon.data.dataset import SliceDataset
from nas_recon.data.ssdu import SsduSplit, ssdu_loss, ssdu_losses
from nas_recon.errors import ConfigError, DataError
from nas_recon.physics.coils import acs_run
from nas_recon.physics.masks import make_mask

WIDTH = 36  # the fixtures' k-space width: SSDU keeps every column, so --size is the width (rows cropped 40 -> 36)


@pytest.fixture
def under(data_root, tmp_path):
    out = tmp_path / "u"
    assert main(["data", "undersample", "--data", str(data_root), "--out", str(out), "--acceleration", "3"]) == 0
    return out


@pytest.mark.parametrize("selection", ["uniform", "gaussian"])
def test_the_split_partitions_the_acquired_columns_and_keeps_the_centre(selection):
    omega = make_mask(320, 4, None, "random", np.random.default_rng(3))
    rule = SsduSplit(0.4, selection)
    lo, hi = acs_run(omega)
    draws = []
    for seed in range(5):
        theta, lam = rule.split(omega, np.random.default_rng(seed))
        assert not (theta & lam).any() and np.array_equal(theta | lam, omega)
        assert lam.sum() == round(0.4 * omega.sum()) and theta[lo:hi].all()
        again = rule.split(omega, np.random.default_rng(seed))[1]
        assert np.array_equal(lam, again)  # seeded
        draws.append(lam)
    assert any(not np.array_equal(draws[0], d) for d in draws[1:])


def test_gaussian_selection_holds_out_columns_nearer_the_centre():
    omega = make_mask(320, 2, None, "random", np.random.default_rng(0))
    dist = {}
    for sel in ("uniform", "gaussian"):
        cols = [np.flatnonzero(SsduSplit(0.4, sel).split(omega, np.random.default_rng(s))[1]) for s in range(20)]
        dist[sel] = np.mean([np.abs(c - 160).mean() for c in cols])
    assert dist["gaussian"] < dist["uniform"] - 10


@pytest.mark.parametrize("rho", [0.0, 1.0, -0.2, 1.5])
def test_rho_outside_the_open_unit_interval_is_refused(rho):
    with pytest.raises(ConfigError, match="ssdu-rho"):
        SsduSplit(rho)


def test_samples_hold_theta_in_and_lambda_out_and_the_loss_is_the_physics(under):
    ds = SliceDataset(under / "train", WIDTH, 16, mode="train", ssdu=SsduSplit())
    s = ds[0]
    assert s.input.shape == (2, 16, WIDTH) and s.holdout.shape == s.kspace.shape == (2, 16, WIDTH)
    th, la = s.mask.bool().view(-1), s.holdout_mask.bool().view(-1)
    assert not (th & la).any() and la.any()
    assert not s.kspace[..., ~th].any() and not s.holdout[..., ~la].any()  # each on its own columns only
    b = default_collate([ds[i] for i in range(4)])
    # the zero-filled image of all acquired columns reproduces the held-out measurements: loss ~ 0;
    # Theta's zero-filled image holds nothing on Lambda: ||y||/||y|| twice
    assert float(ssdu_loss(b.target, b)) < 1e-4
    assert ssdu_losses(b.input, b) == pytest.approx(torch.full((4,), 2.0), abs=1e-4)
    ds.set_epoch(1)
    assert not torch.equal(ds[0].holdout_mask, s.holdout_mask)  # a fresh split each epoch
    val = SliceDataset(under / "val", WIDTH, None, mode="eval", ssdu=SsduSplit())
    assert len(val) == val.volumes[0].num_slices  # once per slice: the file's own mask, no accelerations
    assert torch.equal(val[0].holdout_mask, val[0].holdout_mask)  # fixed per (file, slice)


def test_multicoil_samples_take_the_held_out_kspace_through_the_maps(tmp_path):
    from nas_recon.data.demo import build_demo

    full = tmp_path / "mc"
    build_demo(full, size=64, slices=10, coils=4)
    under = tmp_path / "mcu"
    assert main(["data", "undersample", "--data", str(full), "--out", str(under), "--acceleration", "2"]) == 0
    ds = SliceDataset(under / "train", 64, None, mode="train", ssdu=SsduSplit(), maps_dir=tmp_path / "maps")
    s = ds[0]
    assert s.maps.shape == s.holdout.shape == s.kspace.shape == (4, 2, 64, 64)
    b = default_collate([s])
    # normalised: an all-zero output scores 1 + 1; the zero-filled image of all acquired columns, taken to each
    # coil's k-space through the maps, predicts the held-out columns better than Theta's
    assert float(ssdu_loss(torch.zeros_like(b.input), b)) == pytest.approx(2.0, abs=1e-5)
    assert float(ssdu_loss(b.target, b)) < float(ssdu_loss(b.input, b)) - 0.2
    assert len(list((tmp_path / "maps").glob("*-own-*.npy"))) == 1  # maps from the file's own centre, cached


def run_log(run):
    with open(run / "train_log.csv") as f:
        return list(csv.DictReader(f))


def test_retrain_under_ssdu_reads_no_reference_and_validates_on_held_out_kspace(under, tmp_path, capsys):
    run = tmp_path / "r"
    args = ["retrain", "--model", "dccnn-1", "--data", str(under), "--recipe", "quick", "--size", str(WIDTH),
            "--epochs", "2", "--crop", "16", "--supervision", "ssdu", "--ssdu-selection", "gaussian"]
    assert main([*args, "--out", str(run)]) == 0
    rec = json.loads((run / "run.json").read_text())["recipe"]
    assert (rec["supervision"], rec["ssdu_rho"], rec["ssdu_selection"], rec["loss"]) == ("ssdu", 0.4, "gaussian",
                                                                                          "ssdu")
    rows = run_log(run)
    assert all(r["val_psnr"] == "" and float(r["val_loss"]) > 0 for r in rows) and len(rows) == 3
    assert (run / "best.pt").is_file()
    again = tmp_path / "again"
    assert main([*args, "--out", str(again)]) == 0
    assert [r["train_loss"] for r in run_log(again)] == [r["train_loss"] for r in rows]  # deterministic by seed
    metrics = tmp_path / "m.json"  # evaluation is the usual one, on test/'s references
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(under / "test"), "--out",
                 str(metrics), "--size", str(WIDTH)]) == 0
    assert json.loads(metrics.read_text())
    full = tmp_path / "full"  # supervised runs record none of SSDU's keys
    assert main(["retrain", "--model", "dccnn-1", "--data", str(under.parent / "data"), "--recipe", "quick",
                 "--size", str(SIZE), "--epochs", "1", "--crop", "16", "--out", str(full)]) == 0
    assert "supervision" not in json.loads((full / "run.json").read_text())["recipe"]


@pytest.mark.parametrize("extra, where, message", [
    (["--ssdu-rho", "1.2"], None, "--ssdu-rho"),
    (["--ssdu-rho", "0.95"], None, "too sparse"),
    (["--loss", "mse"], None, "SSDU's own loss"),
    (["--mixup", "0.4"], None, "mixup"),
    ([], "full", "fully sampled"),
    (["--size", str(SIZE)], None, "--size 36"),
])
def test_bad_ssdu_input_gets_one_line_and_writes_nothing(under, data_root, tmp_path, capsys, extra, where, message):
    data = data_root if where == "full" else under
    run = tmp_path / "bad"
    size = [] if "--size" in extra else ["--size", str(WIDTH)]
    try:  # argparse's refusals exit from inside main
        code = main(["retrain", "--model", "dccnn-1", "--data", str(data), "--recipe", "quick", "--epochs", "1",
                     "--crop", "16", "--supervision", "ssdu", "--out", str(run), *size, *extra])
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not run.exists()


def test_a_too_sparse_mask_names_the_file():
    omega = np.zeros(64, dtype=bool)
    omega[30:34] = True
    omega[[2, 50]] = True
    with pytest.raises(DataError, match="f.h5: its mask is too sparse"):
        SsduSplit(0.5).check(omega, "f.h5")


TRIALS = TINY_RECIPE.replace("epochs = 9", "epochs = 3")


def test_a_halving_search_under_ssdu_trains_and_scores_without_references(under, tmp_path):
    recipe = tmp_path / "trials.toml"
    recipe.write_text(TRIALS)
    run = tmp_path / "s"
    assert main(["search", "--data", str(under), "--out", str(run), "--space", "macro_a", "--select", "halving",
                 "--flops-target", "2", "--epochs", "1", "--crop", "16", "--size", str(WIDTH), "--batch-size", "2",
                 "--pool", "3", "--rungs", "1", "--finalists", "1", "--final-seeds", "1", "--recipe", str(recipe),
                 "--device", "cpu", "--supervision", "ssdu"]) == 0
    assert json.loads((run / "run.json").read_text())["config"]["supervision"] == "ssdu"
    sel = json.loads((run / "selection" / "selection.json").read_text())
    assert sel["recipe"]["supervision"] == "ssdu" and "held-out" in sel["score"]
    trials = sorted((run / "selection" / "trials").iterdir())
    assert len(trials) == 3
    for t in trials:  # every trial validated on the held-out loss of val/, never on a reference
        rows = run_log(t)
        assert all(r["val_psnr"] == "" for r in rows) and rows[-1]["val_loss"] != ""
    winner = json.loads((run / "genotype.json").read_text())
    best = min(float(run_log(t)[-1]["val_loss"]) for t in trials)
    assert winner["selection"]["mean_val_loss"] == pytest.approx(best, abs=1e-4)


def test_the_ssdu_demo_puts_self_supervised_networks_beside_their_supervised_twins(tmp_path, capsys):
    """`demo --supervision ssdu` (tiny): train/ and val/ undersampled, the search, its selection and the
    retrainings under SSDU, the report beside the supervised twins on the same fully sampled test/."""
    out = tmp_path / "demo"
    assert main(["demo", "--budget", "tiny", "--out", str(out), "--device", "cpu", "--supervision", "ssdu",
                 "--select", "alpha"]) == 2
    assert "--select halving" in capsys.readouterr().err and not out.exists()
    assert main(["demo", "--budget", "tiny", "--out", str(out), "--device", "cpu", "--supervision", "ssdu"]) == 0
    for f in (out / "data-ssdu" / "train").glob("*.h5"):
        with h5py.File(f) as h:
            assert "mask" in h and "reconstruction_esc" not in h
    assert json.loads((out / "ssdu" / "search" / "run.json").read_text())["config"]["supervision"] == "ssdu"
    report = json.loads((out / "ssdu" / "report" / "report.json").read_text())
    models = {r["model"] for r in report["rows"]}
    assert {"searched-ssdu", "searched-full", "dccnn-3 (dccnn-3-ssdu)", "dccnn-3 (dccnn-3)", "zero-filled"} == models
    assert "--supervision ssdu" in (out / "ssdu" / "report" / "report.md").read_text()
    for run, sup in (("searched-ssdu", "ssdu"), ("searched-full", None)):
        rec = json.loads((out / "ssdu" / "runs" / run / "run.json").read_text())["recipe"]
        assert rec.get("supervision") == sup
