"""Op registry and search-space files."""

import pytest
import torch

from nas_recon.errors import ConfigError
from nas_recon.space import OPS, build_op, load_space, register_op


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("hw", [(9, 9), (17, 12), (32, 5)])
def test_every_op_keeps_size_and_has_no_bias_or_norm(name, hw):
    op = build_op(name, 8)
    x = torch.randn(2, 8, *hw, requires_grad=True)
    y = op(x)
    assert y.shape == x.shape
    y.sum().backward()
    for m in op.modules():
        assert not isinstance(m, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d, torch.nn.GroupNorm))
        if isinstance(m, torch.nn.Conv2d):
            assert m.bias is None


def test_op_definitions():
    assert build_op("none", 4)(torch.ones(1, 4, 3, 3)).abs().sum() == 0
    x = torch.randn(1, 4, 5, 5)
    assert torch.equal(build_op("skip_connect", 4)(x), x)
    dil3 = build_op("dil_3_conv_3x3", 4)
    assert isinstance(dil3[0], torch.nn.ReLU) and dil3[1].dilation == (3, 3) and dil3[1].groups == 4
    f = build_op("conv_9x1_1x9", 4)
    assert [m.kernel_size for m in f if isinstance(m, torch.nn.Conv2d)] == [(9, 1), (1, 9), (1, 1)]
    # params of C=32 separable ops: depthwise 9*32 + pointwise 32*32
    assert sum(p.numel() for p in build_op("sep_conv_3x3", 32).parameters()) == 288 + 1024
    assert sum(p.numel() for p in build_op("conv_9x1_1x9", 32).parameters()) == 288 + 288 + 1024


def test_wider_ops_receptive_field_and_cost():
    """mixed_a's ops: sep 5x5, dilated depthwise rate 4, dense 3x3 and dense 3x3 rate 2 (7x a sep 3x3's MACs)."""
    from nas_recon.cost import module_macs

    s5, d4 = build_op("sep_conv_5x5", 32), build_op("dil_4_conv_3x3", 32)
    assert s5[1].kernel_size == (5, 5) and s5[1].groups == 32 and d4[1].dilation == (4, 4) and d4[1].groups == 32
    dense, ddil = build_op("conv_3x3", 32), build_op("dil_2_dense_3x3", 32)
    assert isinstance(dense[0], torch.nn.ReLU) and dense[1].groups == 1 and ddil[1].dilation == (2, 2)
    assert sum(p.numel() for p in s5.parameters()) == 25 * 32 + 1024
    assert sum(p.numel() for p in dense.parameters()) == 9 * 32 * 32
    x = (torch.randn(1, 32, 16, 16),)
    macs = {n: module_macs(build_op(n, 32), x) / 256 for n in ("sep_conv_3x3", "conv_3x3", "dil_2_dense_3x3")}
    assert macs == {"sep_conv_3x3": 288 + 1024, "conv_3x3": 9216, "dil_2_dense_3x3": 9216}  # per pixel
    # receptive field: an impulse reaches k taps spread over (k - 1) * dilation + 1 pixels
    imp = torch.zeros(1, 32, 33, 33)
    imp[..., 16, 16] = 1.0
    for name, taps, span in (("sep_conv_5x5", 5, 5), ("dil_4_conv_3x3", 3, 9), ("dil_2_dense_3x3", 3, 5),
                             ("conv_3x3", 3, 3)):
        op = build_op(name, 32)
        torch.nn.init.uniform_(op[1].weight, 0.5, 1.0)
        with torch.no_grad():
            hit = torch.nonzero(op(imp).abs().sum((0, 1))[16] > 0).flatten()
        assert (len(hit), int(hit[-1] - hit[0]) + 1) == (taps, span), name


def test_mixed_space_is_biased_and_fits_dense_ops_under_dccnn3():
    from nas_recon.cost import conv_macs
    from nas_recon.genotype import Genotype, Node
    from nas_recon.models.registry import ModelSpec, build_model, spec_for_genotype
    from nas_recon.select.sample import genotype_macs

    m = load_space("mixed_a")
    assert m.bias and m.cells == 1 and (m.nodes, m.cascades, m.channels) == (3, 3, 32)
    assert {"conv_3x3", "dil_2_dense_3x3", "sep_conv_5x5", "dil_4_conv_3x3", "none"} <= set(m.ops)
    dense4 = Genotype((Node((0, 1), ("conv_3x3", "conv_3x3")), Node((0, 2), ("conv_3x3", "dil_2_dense_3x3")),
                       Node((0, 3), ("skip_connect", "sep_conv_3x3"))), "mixed_a", 32, 1, 3, {}, True)
    dccnn3 = conv_macs(build_model(ModelSpec("dccnn-3")), 320)
    assert genotype_macs(dense4, 320) < dccnn3  # 4 dense ops fit under DC-CNN-3's cost with one cell
    net = build_model(spec_for_genotype(dense4))
    convs = [c for c in net.modules() if isinstance(c, torch.nn.Conv2d)]
    assert convs and all(c.bias is not None for c in convs)


def test_register_new_op():
    @register_op("test_identity_op")
    def make(c):
        return torch.nn.Identity()

    try:
        assert isinstance(build_op("test_identity_op", 3), torch.nn.Identity)
        with pytest.raises(ValueError, match="already registered"):
            register_op("test_identity_op")(make)
    finally:
        OPS.pop("test_identity_op")
    with pytest.raises(KeyError, match="unknown op"):
        build_op("test_identity_op", 3)


def test_shipped_spaces():
    a = load_space("paper_a")
    assert a.ops == ("sep_conv_3x3", "dil_2_conv_3x3", "dil_3_conv_3x3", "skip_connect", "none")
    assert (a.nodes, a.cells, a.cascades, a.channels) == (3, 3, 3, 32)
    b = load_space("paper_b")
    assert "conv_9x1_1x9" in b.ops and "dil_3_conv_3x3" not in b.ops


@pytest.mark.parametrize(
    "text,message",
    [
        ('ops = ["sep_conv_3x3"]\nlayers = 3', "unknown key 'layers'"),
        ('ops = ["sep_conv_7x7"]', "key 'ops': unknown op 'sep_conv_7x7'"),
        ('ops = "sep_conv_3x3"', "key 'ops' must be a list"),
        ('ops = ["sep_conv_3x3"]\nnodes = 0', "key 'nodes' must be an integer in \\[1, 16\\]"),
        ('ops = ["sep_conv_3x3"]\nchannels = "32"', "key 'channels'"),
        ('ops = ["none"]', "at least one op other than 'none'"),
        ("ops = [", "not valid TOML"),
        ('ops = ["sep_conv_3x3"]\nbias = 1', "key 'bias' must be true or false"),
    ],
)
def test_space_validation_names_the_key(tmp_path, text, message):
    p = tmp_path / "s.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_space(str(p))


def test_unknown_space_name():
    with pytest.raises(ConfigError, match="unknown space 'paper_z'.*paper_a"):
        load_space("paper_z")
