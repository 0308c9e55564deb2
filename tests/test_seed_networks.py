"""DIRCN and Squeeze U-Net (issue 32): the reference implementations' parameter counts, DIRCN's dense and
interconnected cascades on single- and multi-coil data, and both through retrain, resume, evaluate and export."""

import copy

import pytest
import torch
from conftest import SIZE
from test_train import Interrupt, cfg

from nas_recon.cli.main import main
from nas_recon.engine.checkpoint import read_checkpoint
from nas_recon.models.baselines import per_image_norms
from nas_recon.models.dircn import DIRCN, START_WEIGHT
from nas_recon.models.registry import IMAGE_MODELS, ModelSpec, build_model, count_params
from nas_recon.models.squeeze import SqueezeUNet
from nas_recon.train.retrain import run_retrain


def test_dircn_has_the_authors_parameter_count_and_structure():
    net = build_model(ModelSpec("dircn"))
    # JonOttesen/DIRCN (7e8207d), DIRCN() defaults (30 cascades, n=20, groups=4, ratio 1/8): its 30 cascades hold
    # 60,304,140 parameters and 30 DC weights; its sensitivity network (678,275) is left out, as the maps are given
    assert isinstance(net, DIRCN) and len(net.bodies) == 30
    assert count_params(net) == 60_304_140 + 30
    for c, body in enumerate(net.bodies):  # input-level dense connections: every earlier cascade's input
        assert body.net.stem[0].in_channels == 2 * (c + 1)
        assert body.net.merge[0][0].in_channels == (3 if c else 2) * 160  # interconnections after the first
    lam = torch.stack([f.current_lam() for f in net.fusions])
    torch.testing.assert_close(1 / lam, torch.full_like(lam, START_WEIGHT))  # the authors' w = 0.01 at the start


def test_squeeze_unet_has_the_keras_reference_parameter_count():
    net = SqueezeUNet()
    stats = sum(b.numel() for n, b in net.named_buffers() if n.endswith(("running_mean", "running_var")))
    # lhelontra/squeeze-unet SqueezeUNet(1 channel in, 1 class): Keras counts 2,502,737 parameters, its batch
    # norms' moving mean and variance included (the seed report's "2.5 million"); 2,501,873 of them trainable
    assert count_params(net) + stats == 2_502_737 and count_params(net) == 2_501_873
    registered = build_model(ModelSpec("squeeze-unet"))  # under the image protocol: per-image norms, no statistics
    assert count_params(registered) == count_params(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in registered.modules())


def test_batch_norms_of_image_networks_normalise_each_image_as_at_batch_one():
    """A library network's batch norm becomes the instance norm it computes at fastMRI's batch size 1: training at
    batch 1 is the same computation, and evaluation depends neither on the batch nor on running averages."""
    torch.manual_seed(0)
    bn = SqueezeUNet(width=0.5, dropout=0.0).train()
    per_image = per_image_norms(copy.deepcopy(bn))
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(per_image(x[:1]), bn(x[:1]), rtol=1e-4, atol=1e-5)
        per_image.eval()
        torch.testing.assert_close(per_image(x)[1:2], per_image(x[1:2]), rtol=1e-4, atol=1e-5)


def test_dircn_runs_single_and_multicoil_and_every_parameter_learns():
    g = torch.Generator().manual_seed(0)
    net = build_model(ModelSpec("dircn-small"))
    x = torch.randn(2, 2, 40, 36, generator=g)
    mask = torch.zeros(2, 1, 1, 36)
    mask[..., ::3] = 1
    mask[..., 15:21] = 1
    single = net(x, torch.randn(2, 2, 40, 36, generator=g) * mask, mask)
    maps = torch.randn(2, 3, 2, 40, 36, generator=g)
    maps = maps / maps.pow(2).sum((1, 2), keepdim=True).sqrt()
    multi = net(x, torch.randn(2, 3, 2, 40, 36, generator=g) * mask.unsqueeze(1), mask, maps)
    assert single.shape == multi.shape == x.shape and torch.isfinite(multi).all()
    (single.abs().mean() + multi.abs().mean()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("name", ["dircn-small", "squeeze-unet-small"])
def test_seed_networks_train_resume_evaluate_and_export(name, data_root, tmp_path, capsys):
    kw = dict(epochs=2, unet_crop=SIZE, unet_batch_size=1)
    run_retrain(cfg(data_root, tmp_path / "full", model=name, **kw))
    with pytest.raises(KeyboardInterrupt):
        run_retrain(cfg(data_root, tmp_path / "cut", model=name, **kw), progress=Interrupt())
    run_retrain(cfg(data_root, tmp_path / "cut", model=name, **kw), resume=True)
    a, b = read_checkpoint(tmp_path / "full" / "last.pt"), read_checkpoint(tmp_path / "cut" / "last.pt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    best = str(tmp_path / "full" / "best.pt")
    assert main(["evaluate", "--checkpoint", best, "--data", str(data_root / "test"), "--size", str(SIZE),
                 "--out", str(tmp_path / "m.json")]) == 0
    ts = tmp_path / "net.pt"
    if name in IMAGE_MODELS:  # image-domain networks (as the U-Net) compile to ONNX, not TorchScript: one line
        assert main(["export", "--checkpoint", best, "--format", "torchscript", "--out", str(ts)]) == 2
        err = capsys.readouterr().err.strip()
        assert "--format onnx" in err and "\n" not in err and not ts.exists()
        assert main(["export", "--checkpoint", best, "--format", "onnx", "--out", str(tmp_path / "net.onnx"),
                     "--size", str(SIZE)]) == 0
        return
    assert main(["export", "--checkpoint", best, "--format", "torchscript", "--out", str(ts)]) == 0
    scripted = torch.jit.load(str(ts))
    model = build_model(ModelSpec(name)).eval()
    model.load_state_dict(read_checkpoint(best)["state_dict"])
    x = torch.randn(1, 2, SIZE, SIZE)
    mask = torch.zeros(1, 1, 1, SIZE)
    mask[..., ::2] = 1
    with torch.no_grad():
        torch.testing.assert_close(scripted(x, x * mask, mask), model(x, x * mask, mask), rtol=1e-4, atol=1e-5)
