"""The seed reports' image-domain baselines (issue 32, in part): MONAI's Attention U-Net and EfficientNet-B0
U-Net under fastMRI's U-Net protocol; they build offline, keep shapes, train, resume and evaluate like the others."""

import socket

import pytest
import torch
from conftest import SIZE
from test_train import Interrupt, cfg

from nas_recon.cli.main import main
from nas_recon.engine.checkpoint import read_checkpoint
from nas_recon.models.registry import IMAGE_MODELS, ModelSpec, build_model, count_params
from nas_recon.train.recipe import Recipe, for_model
from nas_recon.train.retrain import run_retrain

NEW = ("attention-unet", "attention-unet-small", "unet-effb0", "squeeze-unet", "squeeze-unet-small")


def test_they_are_image_domain_models_under_the_unet_protocol():
    assert set(NEW) | {"unet"} <= IMAGE_MODELS
    r = Recipe(epochs=1, crop=16, batch_size=4, unet_crop=1000, unet_batch_size=1)
    for name in NEW:
        got = for_model(r, name, 64)
        assert (got.crop, got.batch_size) == (64, 1)


@pytest.mark.parametrize("name", NEW)
def test_output_is_a_complex_image_of_the_input_shape_at_any_size(name):
    torch.manual_seed(0)
    net = build_model(ModelSpec(name, channels=8 if name.startswith("attention") else 32))
    for h, w in ((64, 64), (40, 72)):  # sizes that are not multiples of the total stride are padded and cropped
        x = torch.randn(1, 2, h, w, requires_grad=True)
        y = net(x, x.detach(), torch.ones(1, 1, 1, w))
        assert y.shape == x.shape and torch.isfinite(y).all()
        y.abs().mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()


def test_unet_effb0_has_the_reference_parameter_count_and_opens_no_connection(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a network connection was opened")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    net = build_model(ModelSpec("unet-effb0"))
    # MONAI FlexibleUNet(in_channels=1, out_channels=1, backbone="efficientnet-b0", pretrained=False,
    # spatial_dims=2): 7,059,701 parameters (the figure the issue states); the protocol around it adds none
    assert count_params(net) == 7_059_701


def test_attention_unet_width_follows_channels():
    assert count_params(build_model(ModelSpec("attention-unet", channels=16))) < count_params(
        build_model(ModelSpec("attention-unet", channels=32)))


def test_attention_unet_small_trains_resumes_and_evaluates(data_root, tmp_path, capsys):
    kw = dict(epochs=2, unet_crop=SIZE, unet_batch_size=1)
    run_retrain(cfg(data_root, tmp_path / "full", model="attention-unet-small", **kw))
    with pytest.raises(KeyboardInterrupt):
        run_retrain(cfg(data_root, tmp_path / "cut", model="attention-unet-small", **kw), progress=Interrupt())
    run_retrain(cfg(data_root, tmp_path / "cut", model="attention-unet-small", **kw), resume=True)
    a, b = read_checkpoint(tmp_path / "full" / "last.pt"), read_checkpoint(tmp_path / "cut" / "last.pt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert main(["evaluate", "--checkpoint", str(tmp_path / "full" / "best.pt"), "--data", str(data_root / "test"),
                 "--size", str(SIZE), "--out", str(tmp_path / "m.json")]) == 0
    assert (tmp_path / "m.json").is_file()


def test_channels_on_a_fixed_configuration_is_refused(data_root, tmp_path, capsys):
    assert main(["retrain", "--model", "unet-effb0", "--channels", "16", "--data", str(data_root),
                 "--out", str(tmp_path / "r"), "--size", str(SIZE)]) == 2
    err = capsys.readouterr().err
    assert "--channels" in err and "fixed configuration" in err and not (tmp_path / "r").exists()


def test_evaluate_averages_an_ensemble_and_refuses_networks_of_another_setting(data_root, tmp_path, capsys):
    import json
    from dataclasses import replace

    run_retrain(cfg(data_root, tmp_path / "a", model="dccnn-1", epochs=1))
    run_retrain(cfg(data_root, tmp_path / "b", model="rdn-1", epochs=1))
    other = replace(cfg(data_root, tmp_path / "c", model="dccnn-1", epochs=1), size=SIZE - 8)
    run_retrain(other)
    a, b, c = (str(tmp_path / n / "best.pt") for n in "abc")
    common = ["--data", str(data_root / "test"), "--size", str(SIZE)]
    assert main(["evaluate", "--checkpoint", a, *common, "--out", str(tmp_path / "a.json")]) == 0
    assert main(["evaluate", "--checkpoint", a, a, *common, "--out", str(tmp_path / "aa.json")]) == 0
    assert main(["evaluate", "--checkpoint", a, b, *common, "--out", str(tmp_path / "ab.json")]) == 0
    one, twice, both = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("a", "aa", "ab"))
    for acc, m in one["aggregate"].items():  # the mean of one network with itself is that network
        assert twice["aggregate"][acc]["psnr"]["mean"] == pytest.approx(m["psnr"]["mean"], abs=1e-4)
    assert both["method"]["members"] == ["dccnn-1", "rdn-1"] and both["method"]["checkpoint"] == [a, b]
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", a, c, *common, "--out", str(tmp_path / "ac.json")]) == 2
    err = capsys.readouterr().err
    assert "--size" in err and c in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "ac.json").exists()


def test_report_shows_an_ensemble_as_a_row_with_the_summed_cost(data_root, tmp_path, capsys):
    import json

    run_retrain(cfg(data_root, tmp_path / "a", model="dccnn-1", epochs=1))
    run_retrain(cfg(data_root, tmp_path / "b", model="rdn-1", epochs=1))
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["--data", str(data_root / "test"), "--size", str(SIZE), "--no-tv"]
    out = tmp_path / "rep"
    assert main(["report", "--runs", str(a), str(b), "--out", str(out), "--ensemble", str(a), str(b),
                 "--ensemble", str(a), str(a), *common]) == 0
    rows = json.loads((out / "report.json").read_text())["rows"]
    by = {(r["model"], r["acceleration"]): r for r in rows}
    names = {r["model"] for r in rows}
    pair = next(n for n in names if n.startswith("ensemble") and "rdn" in n)
    twice = next(n for n in names if n.startswith("ensemble") and "rdn" not in n)
    single = next(n for n in names if n.startswith("dccnn"))
    for acc in ("4x", "8x"):
        p, one, two = by[(pair, acc)], by[(single, acc)], by[(twice, acc)]
        rdn = by[(next(n for n in names if n.startswith("rdn")), acc)]
        assert p["kind"] == "ensemble" and p["params"] == one["params"] + rdn["params"]
        assert p["flops"] == pytest.approx(one["flops"] + rdn["flops"])
        assert two["psnr"]["mean"] == pytest.approx(one["psnr"]["mean"], abs=1e-4)  # a network with itself
    assert "ensemble" in (out / "report.md").read_text()
    capsys.readouterr()
    other = tmp_path / "rep2"
    assert main(["report", "--runs", str(a), "--out", str(other), "--ensemble", str(a), str(b), *common]) == 2
    err = capsys.readouterr().err.strip()
    assert "--ensemble" in err and str(b) in err and "\n" not in err and not other.exists()
    assert main(["report", "--runs", str(a), str(b), "--out", str(other), "--ensemble", str(a), *common]) == 2
    assert "at least two" in capsys.readouterr().err and not other.exists()
