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
        ('ops = ["sep_conv_5x5"]', "key 'ops': unknown op 'sep_conv_5x5'"),
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
