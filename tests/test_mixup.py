"""Mixup for retrain (issue 32): a mixture of two slices measured again under one mask, seeded draws, the recipe's
record, resume, and the refusals."""

import json

import pytest
import torch
from conftest import SIZE
from test_train import Interrupt, cfg

from nas_recon.cli.main import main
from nas_recon.data.dataset import MaskSpec, SliceDataset
from nas_recon.data.mixup import MixupDataset, mix
from nas_recon.engine.checkpoint import read_checkpoint
from nas_recon.physics.fft import chan_to_complex, complex_to_chan, fft2c, ifft2c
from nas_recon.train.retrain import run_retrain


def slices(data_root):
    return SliceDataset(data_root / "train", SIZE, 16, MaskSpec(), "train", 0)


def test_a_mixture_is_a_consistent_measurement_under_the_first_mask(data_root):
    ds = slices(data_root)
    a, b = ds[0], ds[3]
    m = mix(a, b, 0.3)
    torch.testing.assert_close(m.target, 0.3 * a.target + 0.7 * b.target)
    k = fft2c(chan_to_complex(m.target)) * a.mask[0]
    torch.testing.assert_close(chan_to_complex(m.kspace), k)
    torch.testing.assert_close(m.input, complex_to_chan(ifft2c(k)))
    assert torch.equal(m.mask, a.mask) and m.scale == a.scale and m.file == a.file
    same = mix(a, b, 1.0)  # lam = 1: the slice itself
    torch.testing.assert_close(same.input, a.input, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(same.kspace, a.kspace, rtol=1e-4, atol=1e-5)


def test_draws_are_seeded_per_epoch_and_index(data_root):
    one, two = MixupDataset(slices(data_root), 0.4, 0), MixupDataset(slices(data_root), 0.4, 0)
    assert torch.equal(one[2].target, two[2].target)
    first = one[2].target
    one.set_epoch(1)
    assert not torch.equal(one[2].target, first) and one.base.epoch == 1 and len(one) == len(one.base)


def test_retrain_with_mixup_records_it_and_resumes_to_the_same_weights(data_root, tmp_path):
    kw = dict(epochs=2, mixup=0.4)
    run_retrain(cfg(data_root, tmp_path / "full", **kw))
    with pytest.raises(KeyboardInterrupt):
        run_retrain(cfg(data_root, tmp_path / "cut", **kw), progress=Interrupt())
    run_retrain(cfg(data_root, tmp_path / "cut", **kw), resume=True)
    a, b = read_checkpoint(tmp_path / "full" / "last.pt"), read_checkpoint(tmp_path / "cut" / "last.pt")
    assert all(torch.equal(v, b["state_dict"][k]) for k, v in a["state_dict"].items())
    assert json.loads((tmp_path / "full" / "run.json").read_text())["recipe"]["mixup"] == 0.4
    run_retrain(cfg(data_root, tmp_path / "plain", epochs=1))
    assert "mixup" not in json.loads((tmp_path / "plain" / "run.json").read_text())["recipe"]  # off: as before


@pytest.mark.parametrize("alpha", ["0", "-0.5", "nan"])
def test_a_mixup_alpha_at_or_below_zero_is_refused(data_root, tmp_path, capsys, alpha):
    out = tmp_path / "r"
    with pytest.raises(SystemExit) as e:  # argparse: usage, then the one line
        main(["retrain", "--model", "dccnn-1", "--data", str(data_root), "--out", str(out), "--size", str(SIZE),
              f"--mixup={alpha}"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--mixup" in err and "> 0" in err and not out.exists()
