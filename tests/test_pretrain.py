"""Contrastive pretraining (issue 31, Self-MRI's SimCLR): NT-Xent, the encoder's keys, views from undersampled files
alone, retrain --init and its refusals."""

import json
import math
from dataclasses import replace

import pytest
import torch
from conftest import SIZE

from nas_recon.cli.main import main
from nas_recon.models.encoders import encoder_of
from nas_recon.models.registry import ModelSpec, build_model
from nas_recon.train.config import RetrainConfig
from nas_recon.train.pretrain import PRETRAINED, load_pretrained, nt_xent, trained_keys
from nas_recon.train.recipe import load_recipe, with_overrides
from nas_recon.train.retrain import run_retrain

WIDTH = 36


def test_nt_xent_is_low_for_matching_views_and_chance_for_random_ones():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 16, generator=g)
    assert float(nt_xent(z, z, 0.1)) < 0.05  # each view's positive is itself: found at once
    rand = torch.tensor([float(nt_xent(torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g), 1e3))
                         for _ in range(3)])
    assert float(rand.mean()) == pytest.approx(math.log(15), abs=0.05)  # 1 of 2N - 1 at random


@pytest.mark.parametrize("name", ["unet", "attention-unet-small"])
def test_the_encoder_keys_are_the_contracting_path(name):
    net = build_model(ModelSpec(name))
    keys = trained_keys(net, name)
    enc = {f"{n}" for n, _ in net.named_parameters()}
    assert keys and set(keys) < enc  # the bottleneck's inputs, not the decoder
    bottom = {id(p) for p in encoder_of(name, net).parameters()}
    named = dict(net.named_parameters())
    assert bottom <= {id(named[k]) for k in keys}  # the bottleneck block itself is part of the encoder
    decoder = [k for k in enc if k not in keys]
    assert decoder and any("up" in k or "upconv" in k or "merge" in k for k in decoder)


def test_pretraining_reads_undersampled_files_alone_and_retrain_init_loads_the_encoder(data_root, tmp_path, capsys):
    under = tmp_path / "u"
    assert main(["data", "undersample", "--data", str(data_root), "--out", str(under), "--acceleration", "3"]) == 0
    run = tmp_path / "pt"
    args = ["pretrain", "--data", str(under), "--out", str(run), "--model", "unet", "--size", str(WIDTH),
            "--crop", "32", "--epochs", "2", "--batch-size", "4", "--device", "cpu"]
    assert main(args) == 0
    assert json.loads((run / "run.json").read_text())["kind"] == "pretrain"
    assert (run / "pretrain_log.csv").read_text().count("\n") == 3
    assert main(args) == 2  # a second run over it is refused
    assert "--resume" in capsys.readouterr().err
    again = tmp_path / "pt2"
    assert main([*args[:4], str(again), *args[5:]]) == 0
    a, b = (torch.load(d / PRETRAINED, weights_only=False) for d in (run, again))
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["encoder_keys"])  # seeded
    ft = tmp_path / "ft"
    assert main(["retrain", "--model", "unet", "--data", str(data_root), "--out", str(ft), "--recipe", "quick",
                 "--size", str(SIZE), "--epochs", "1", "--crop", "32", "--init", str(run)]) == 0
    assert json.loads((ft / "run.json").read_text())["init"] == str(run)
    net = build_model(ModelSpec("unet"))
    torch.manual_seed(0)
    keys = load_pretrained(run, ModelSpec("unet"), net)
    assert keys == list(a["encoder_keys"]) and torch.equal(net.state_dict()[a["encoder_keys"][0]],
                                                       a["state_dict"][a["encoder_keys"][0]])


@pytest.mark.parametrize("model, extra, message", [
    ("dccnn-3", [], "pretrained unet"),
    ("unet", ["--channels", "16"], "at 32 channels"),
])
def test_an_init_of_another_model_or_shape_gets_one_line_and_writes_nothing(data_root, tmp_path, capsys, model,
                                                                            extra, message):
    run = tmp_path / "pt"
    assert main(["pretrain", "--data", str(data_root), "--out", str(run), "--model", "unet", "--size", str(SIZE),
                 "--crop", "32", "--epochs", "1", "--batch-size", "4", "--device", "cpu"]) == 0
    capsys.readouterr()
    ft = tmp_path / "ft"
    assert main(["retrain", "--model", model, "--data", str(data_root), "--out", str(ft), "--recipe", "quick",
                 "--size", str(SIZE), "--epochs", "1", "--crop", "16", "--init", str(run), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and not ft.exists()
    not_pretrain = tmp_path / "r"
    assert main(["retrain", "--model", "unet", "--data", str(data_root), "--out", str(not_pretrain), "--recipe",
                 "quick", "--size", str(SIZE), "--epochs", "1", "--crop", "32"]) == 0
    assert main(["retrain", "--model", "unet", "--data", str(data_root), "--out", str(ft), "--recipe", "quick",
                 "--size", str(SIZE), "--epochs", "1", "--crop", "32", "--init",
                 str(not_pretrain / "best.pt")]) == 2
    assert "not a pretraining checkpoint" in capsys.readouterr().err


def test_pretraining_refuses_a_model_without_an_encoder(data_root, tmp_path, capsys):
    assert main(["pretrain", "--data", str(data_root), "--out", str(tmp_path / "p"), "--model", "dccnn-3",
                 "--size", str(SIZE), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no encoder to pretrain" in err and "unet" in err and not (tmp_path / "p").exists()


def test_init_freeze_holds_the_pretrained_encoder_still_for_its_share_of_the_epochs_then_fine_tunes_it(
        data_root, tmp_path, capsys):
    run = tmp_path / "pt"
    assert main(["pretrain", "--data", str(data_root), "--out", str(run), "--model", "unet", "--size", str(SIZE),
                 "--crop", "32", "--epochs", "1", "--batch-size", "4", "--device", "cpu"]) == 0
    pre = torch.load(run / PRETRAINED, weights_only=False)
    recipe = with_overrides(load_recipe("quick"), {"epochs": 2, "crop": 32}, "test")
    ft = tmp_path / "ft"
    cfg = RetrainConfig(str(data_root), str(ft), recipe, model="unet", size=SIZE, device="cpu", init=str(run),
                        init_freeze=0.5, stop_epoch=1)
    assert run_retrain(cfg)["history"][-1]["epoch"] == 1  # epoch 1 of 2: frozen
    held = torch.load(ft / "last.pt", weights_only=False)["state_dict"]
    enc = pre["encoder_keys"]
    weights = [k for k in enc if k.endswith("weight")]
    assert weights and all(torch.equal(held[k], pre["state_dict"][k]) for k in enc)
    torch.manual_seed(cfg.seed)  # the run's own initial network
    start = build_model(ModelSpec("unet")).state_dict()
    assert any(not torch.equal(held[k], v) for k, v in start.items() if k not in enc)  # the decoder learnt
    assert json.loads((ft / "run.json").read_text())["init_freeze"] == 0.5
    run_retrain(replace(cfg, stop_epoch=None), resume=True)  # epoch 2: the encoder fine-tuned
    after = torch.load(ft / "last.pt", weights_only=False)["state_dict"]
    assert any(not torch.equal(after[k], pre["state_dict"][k]) for k in weights)
    assert main(["retrain", "--model", "unet", "--data", str(data_root), "--out", str(tmp_path / "x"), "--recipe",
                 "quick", "--size", str(SIZE), "--epochs", "1", "--init-freeze", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--init-freeze" in err and "--init" in err and "\n" not in err and not (tmp_path / "x").exists()
