"""Process settings (allocator, denormals), channels_last execution and the cell-network initialisation."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import EXAMPLE

from nas_recon.device import place
from nas_recon.genotype import genotype_from_dict
from nas_recon.models.init import relu_fed_convs
from nas_recon.models.registry import ModelSpec, build_model, spec_for_genotype
from nas_recon.models.searched import build_from_genotype
from nas_recon.space.ops import OPS, build_op

PROBE = """
import json, sys, torch
from nas_recon.cli.main import main
from nas_recon import runtime
rc = main(["sample", "--n", "1", "--out", sys.argv[1]])
tiny = float(torch.tensor(1e-40, dtype=torch.float32) * 1.0)
print(json.dumps({"rc": rc, "applied": runtime.APPLIED, "denormal_result": tiny}))
"""


def probe(folder, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", PROBE, str(folder)], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cli_sets_the_allocator_and_flushes_denormals(tmp_path):
    r = probe(tmp_path / "cells")
    assert r["rc"] == 0
    assert r["applied"]["mmap_threshold"] == 1 << 30 and r["applied"]["trim_threshold"] == 1 << 30
    assert r["applied"]["flush_denormal"] is True and r["denormal_result"] == 0.0


def test_user_malloc_settings_are_respected(tmp_path):
    r = probe(tmp_path / "cells", {"MALLOC_MMAP_THRESHOLD_": "65536"})
    assert "mmap_threshold" not in r["applied"] and r["applied"]["flush_denormal"] is True


def test_place_takes_an_explicit_layout():
    cpu = torch.device("cpu")
    for fmt, check in ((None, torch.channels_last), (torch.contiguous_format, torch.contiguous_format)):
        four_d = [p for p in place(build_model(ModelSpec("unet", channels=8)), cpu, fmt).parameters() if p.dim() == 4]
        assert all(p.is_contiguous(memory_format=check) for p in four_d)
        assert check == torch.contiguous_format or not all(p.is_contiguous() for p in four_d)


@pytest.mark.parametrize("name", ["dccnn-2", "modl-2", "rdn-2", "unet", "searched"])
def test_channels_last_gives_the_same_output(name):
    spec = spec_for_genotype(genotype_from_dict(dict(EXAMPLE, channels=8))) if name == "searched" \
        else ModelSpec(name, channels=8)
    torch.manual_seed(0)
    ref = build_model(spec).eval()
    with torch.no_grad():  # non-trivial output convs (searched bodies start as the identity)
        for p in ref.parameters():
            p.add_(0.01 * torch.randn_like(p))
    fast = place(build_model(spec), torch.device("cpu"), torch.channels_last).eval()
    fast.load_state_dict(ref.state_dict())
    assert any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for p in fast.parameters())
    x = torch.randn(2, 2, 32, 32)
    mask = (torch.rand(2, 1, 1, 32) > 0.5).float()
    with torch.no_grad():
        torch.testing.assert_close(fast(x, x * mask, mask), ref(x, x * mask, mask), rtol=1e-4, atol=1e-5)


def gain(module, x):
    with torch.no_grad():
        return float(module(x).pow(2).mean().sqrt() / x.pow(2).mean().sqrt())


@pytest.mark.parametrize("op", [o for o in OPS if o not in ("none", "skip_connect")])
def test_every_op_keeps_the_signal_at_init(op):
    """Scaled init: each separable op has gain ~1 (PyTorch's default: ~0.2, the signal dies in a deep cell)."""
    torch.manual_seed(0)
    cell = [{"inputs": [0, 1], "ops": [op, op]}] * 3
    net = build_from_genotype(genotype_from_dict(dict(EXAMPLE, space="custom", cell=cell)))
    m = net.bodies[0].cells[0].ops[0]
    x = torch.randn(8, 32, 32, 32)
    assert 0.75 < gain(m, x) < 1.33
    torch.manual_seed(0)
    # the same op under PyTorch's default init: ~0.2-0.3 for separable ops, ~0.4 for a dense 3x3 (1/sqrt(6))
    assert gain(build_op(op, 32), x) < 0.45


def test_modules_start_as_the_identity_and_inner_signal_is_kept():
    torch.manual_seed(0)
    net = build_from_genotype(genotype_from_dict(EXAMPLE))
    body = net.bodies[0]
    x = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        assert torch.equal(body(x), x)  # zero output conv: D(x) = x, the net starts at zero-filled + fusion
        s0 = body.stem0(x)
        s1 = body.stem1(s0)
        feats = [s0, s1]
        for cell in body.cells:
            feats.append(cell(feats[-2], feats[-1]))
    rms = [float(f.pow(2).mean().sqrt() / x.pow(2).mean().sqrt()) for f in feats]
    assert all(0.5 < r < 8.0 for r in rms), rms  # PyTorch's default init: ~1e-3 by the last cell
    fed = relu_fed_convs(body)
    assert id(body.cells[0].pre0[1]) in fed and id(body.stem1) not in fed


def test_layer_lr_groups_equalise_relative_steps():
    """Each conv's Adam lr is lr x its init std / a dense 3x3 32-channel conv's; every parameter in one group."""
    import math

    from nas_recon.models.init import REF_STD, layer_lr_groups

    net = build_from_genotype(genotype_from_dict(EXAMPLE))
    groups = layer_lr_groups(net, 1e-3)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in net.parameters()) and len(ids) == len(set(ids))
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    op = net.bodies[0].cells[0].ops[0]  # ReLU -> depthwise 3x3 -> pointwise
    assert lr_of[id(op[1].weight)] == pytest.approx(1e-3 * math.sqrt(2 / 9) / REF_STD)  # ~8x: fan_in 9
    assert lr_of[id(op[2].weight)] == pytest.approx(1e-3 * math.sqrt(1 / 32) / REF_STD)  # ~3x: fan_in 32
    dense = torch.nn.Conv2d(32, 32, 3, bias=False)
    assert layer_lr_groups(dense, 1e-3)[0]["lr"] == pytest.approx(1e-3)  # the reference layer keeps lr
    # the optimiser's relative step is then alike for depthwise and dense weights
    rel = {name: lr_of[id(w)] / float(w.detach().std()) for name, w in (("dw", op[1].weight), ("pw", op[2].weight))}
    assert 0.5 < rel["dw"] / rel["pw"] < 2
