"""Genotype JSON contract, validation, builder."""

import copy
import json

import pytest
import torch
from conftest import EXAMPLE

from nas_recon.errors import ConfigError
from nas_recon.genotype import genotype_from_dict, load_genotype, save_genotype
from nas_recon.models import build_from_genotype


def test_round_trip_keeps_extra_keys(tmp_path):
    d = {**EXAMPLE, "alphas": {"node0<-0": {"sep_conv_3x3": 0.5}}, "seed": 3}
    g = genotype_from_dict(d)
    save_genotype(g, tmp_path / "g.json")
    back = load_genotype(tmp_path / "g.json")
    assert back == g and back.extra["seed"] == 3
    assert json.loads((tmp_path / "g.json").read_text()) == d


def bad(**changes):
    d = copy.deepcopy(EXAMPLE)
    for k, v in changes.items():
        if k.startswith("cell") and k != "cell":
            i, field = k[4:].split("_", 1)
            d["cell"][int(i)][field] = v
        else:
            d[k] = v
    return d


@pytest.mark.parametrize(
    "d,message",
    [
        (bad(format="darts"), "field 'format'"),
        (bad(version=3), "field 'version' is 3"),  # version 2 (macro choices) is read since issue 29
        (bad(version=2), "field 'backbone' must be one of dag, chain"),
        (bad(nodes=4), "has 3 nodes, field 'nodes' says 4"),
        (bad(channels=0), "field 'channels'"),
        (bad(cell1_ops=["sep_conv_3x3", "conv_7x7"]), r"cell\[1\]: unknown op 'conv_7x7'"),
        (bad(cell0_ops=["none", "sep_conv_3x3"]), "unknown op 'none'"),
        (bad(cell0_inputs=[0, 2]), r"cell\[0\]: input index 2 out of range, node 0 may use 0..1"),
        (bad(cell2_inputs=[0, -1]), "input index -1"),
        (bad(cell1_inputs=[1]), "list of 2 integers"),
        (bad(cell="x"), "field 'cell' must be a list"),
    ],
)
def test_validation_errors(d, message):
    with pytest.raises(ConfigError, match=message):
        genotype_from_dict(d)


def test_load_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_genotype(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_genotype(tmp_path / "x.json")


def test_builder_params_equal_hand_count():
    g = genotype_from_dict(EXAMPLE)
    net = build_from_genotype(g)
    c, n = 32, 3
    stem = 2 * c * 9 + c * c * 9
    out = n * c * 2 * 9
    pre = (c * c + c * c) + (c * c + n * c * c) + 2 * (n * c * c)  # 1x1 preprocessing of the 3 cells
    sep = 9 * c + c * c  # every op of EXAMPLE is a (dilated) separable conv
    per_body = stem + out + pre + 3 * (6 * sep)
    assert sum(p.numel() for p in net.parameters()) == 3 * per_body == 142272
    assert all(m.bias is None for m in net.modules() if isinstance(m, torch.nn.Conv2d))


def test_builder_forward_backward_odd_sizes_and_torchscript():
    g = genotype_from_dict(EXAMPLE)
    net = build_from_genotype(g)
    x = torch.randn(2, 2, 19, 13)
    mask = torch.zeros(2, 1, 1, 13)
    mask[..., ::3] = 1
    y = net(x, x * mask, mask)
    assert y.shape == x.shape
    y.abs().mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    scripted = torch.jit.script(net)
    torch.testing.assert_close(scripted(x, x * mask, mask), net(x, x * mask, mask))


def test_golden_output():
    """Pins the builder: same genotype + seed -> the same output (guards layout/order changes)."""
    torch.manual_seed(0)
    net = build_from_genotype(genotype_from_dict(EXAMPLE)).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # the output convs start at zero (identity modules): give them seeded weights
        for body in net.bodies:
            body.out.weight.copy_(0.05 * torch.randn(body.out.weight.shape, generator=g))
    x = torch.randn(1, 2, 16, 16, generator=g)
    mask = torch.zeros(1, 1, 1, 16)
    mask[..., 6:10] = 1
    with torch.no_grad():
        y = net(x, x, mask)
    assert float(y.sum()) == pytest.approx(GOLDEN_SUM, abs=2e-3)
    assert float(y.abs().sum()) == pytest.approx(GOLDEN_ABS, rel=1e-4)


GOLDEN_SUM = -33.05555725097656
GOLDEN_ABS = 3419.62109375


def test_cell_bias_round_trip_and_builder(tmp_path):
    """'bias': true (search --cell-bias, outside SPEC) rebuilds a net with a zero bias on every conv; at init it
    computes exactly what the bias-free net computes; a bias-free genotype's JSON has no 'bias' key."""
    assert "bias" not in genotype_from_dict(EXAMPLE).to_dict()
    g = genotype_from_dict({**EXAMPLE, "bias": True})
    save_genotype(g, tmp_path / "g.json")
    back = load_genotype(tmp_path / "g.json")
    assert back.bias and json.loads((tmp_path / "g.json").read_text())["bias"] is True
    torch.manual_seed(0)
    plain = build_from_genotype(genotype_from_dict(EXAMPLE))
    torch.manual_seed(0)
    biased = build_from_genotype(back)
    convs = [m for m in biased.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.bias is not None for m in convs)
    n = sum(p.numel() for p in biased.parameters()) - sum(p.numel() for p in plain.parameters())
    assert n == sum(m.out_channels for m in convs)
    with torch.no_grad():
        for p in plain.parameters():  # non-trivial output convs
            p.add_(0.01)
        for name, p in biased.named_parameters():
            if not name.endswith("bias"):
                p.add_(0.01)
    x = torch.randn(1, 2, 16, 16)
    mask = torch.ones(1, 1, 1, 16)
    torch.testing.assert_close(biased(x, x, mask), plain(x, x, mask))


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_cell_bias_must_be_a_boolean(value):
    with pytest.raises(ConfigError, match="field 'bias' must be true or false"):
        genotype_from_dict({**EXAMPLE, "bias": value})
