"""Supernet shapes, a tiny end-to-end search, determinism and resume after a kill."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import SIZE

from nas_recon.engine.checkpoint_io import EXTRA
from nas_recon.errors import ConfigError
from nas_recon.genotype import load_genotype
from nas_recon.models.registry import count_params
from nas_recon.models.searched import build_from_genotype
from nas_recon.search.config import RECORD
from nas_recon.search.run import SearchConfig, run_search
from nas_recon.search.supernet import arch_parameters, build_supernet, edge_weights, first_cell, make_strategy
from nas_recon.space import load_space


def test_supernet_shapes_and_shared_alphas():
    space = load_space("paper_b")
    torch.manual_seed(0)
    net = build_supernet(space, make_strategy("darts", 3e-4, 5.0))
    assert len(arch_parameters(net)) == sum(i + 2 for i in range(space.nodes))  # one alpha per edge, shared
    x = torch.randn(2, 2, 21, 15)
    mask = torch.ones(2, 1, 1, 15)
    y = net(x, x, mask)
    assert y.shape == x.shape
    y.abs().mean().backward()
    assert all(p.grad is not None for p in arch_parameters(net))
    w = edge_weights(net, space)
    assert set(w[(0, 0)]) == set(space.ops) and sum(w[(2, 3)].values()) == pytest.approx(1.0)


def tiny_config(data_root, out, **kw):
    base = dict(data=str(data_root), out=str(out), epochs=2, patience=5, crop=16, size=SIZE, batch_size=2,
                device="cpu")
    base.update(kw)
    return SearchConfig(**base)


def test_tiny_search_writes_a_valid_genotype_and_is_deterministic(data_root, tmp_path):
    r1 = run_search(tiny_config(data_root, tmp_path / "a"))
    g = load_genotype(tmp_path / "a" / "genotype.json")
    assert g.nodes == 3 and g.same_cell(r1.genotype)
    d = json.loads((tmp_path / "a" / "genotype.json").read_text())
    assert set(d["data"]["train_w"]).isdisjoint(d["data"]["train_alpha"])
    assert len(d["alphas"]) == 2 + 3 + 4
    for name in ("alphas.csv", "search_log.csv", "cell.svg", "cell.png", "last.pt"):
        assert (tmp_path / "a" / name).is_file(), name
    log = (tmp_path / "a" / "search_log.csv").read_text().splitlines()
    assert len(log) == 3 and log[0].startswith("epoch,w_loss,alpha_loss")
    run_search(tiny_config(data_root, tmp_path / "b"))
    a = json.loads((tmp_path / "a" / "genotype.json").read_text())
    b = json.loads((tmp_path / "b" / "genotype.json").read_text())
    assert a["cell"] == b["cell"] and a["alphas"] == b["alphas"]


def test_a_search_folder_of_an_earlier_nas_recon_resumes_from_its_lightning_checkpoint(data_root, tmp_path):
    full = run_search(tiny_config(data_root, tmp_path / "full", epochs=2))
    old = tmp_path / "old"
    run_search(tiny_config(data_root, old, epochs=1))
    # what an earlier nas-recon kept: Lightning's own file, checkpoints/last.ckpt
    ck = RECORD.checkpoint_io().load_checkpoint(old / "last.pt")
    del ck[EXTRA]
    (old / "checkpoints").mkdir()
    torch.save(ck, old / "checkpoints" / "last.ckpt")
    (old / "last.pt").unlink()
    (old / "genotype.json").unlink()
    resumed = run_search(tiny_config(data_root, old, epochs=2), resume=True)
    assert resumed.epochs_run == 2 and (old / "last.pt").is_file()  # continued, and now in the one format
    assert resumed.genotype.same_cell(full.genotype)
    a, b = (json.loads((d / "genotype.json").read_text())["alphas"] for d in (tmp_path / "full", old))
    assert a == b  # one machine: the resumed search is the uninterrupted one


def test_early_stopping_needs_a_stable_and_decided_genotype(data_root, tmp_path):
    # frozen alphas: the genotype never changes; with no margin floor the (tiny) margins beat the zero drift
    r = run_search(tiny_config(data_root, tmp_path / "s", epochs=30, patience=1, arch_lr=1e-9, decide_margin=0.0))
    assert r.stopped_early and r.epochs_run == 2
    # the same stable genotype, but its margins (~1e-4 from NNI's alpha init) are below a 0.02 floor: no stop
    r = run_search(tiny_config(data_root, tmp_path / "u", epochs=3, patience=1, arch_lr=1e-9))
    assert not r.stopped_early and r.epochs_run == 3
    rows = list(csv.DictReader((tmp_path / "u" / "search_log.csv").open()))
    assert [int(x["unchanged_epochs"]) for x in rows] == [0, 1, 2] and {x["decided"] for x in rows} == {"0"}
    for x in rows:  # per-edge entropy (near 1 = undecided) and margins, and the margin the cell depends on
        assert 0.99 < float(x["entropy_n2_3"]) <= 1.0 and float(x["chosen_margin"]) < 0.02
        assert float(x["chosen_margin"]) >= min(float(x["min_op_margin"]), float(x["min_edge_margin"]))


def test_random_strategy(data_root, tmp_path):
    r = run_search(tiny_config(data_root, tmp_path / "r", epochs=1, strategy="random", candidates=3))
    d = json.loads((tmp_path / "r" / "genotype.json").read_text())
    assert len(d["random_candidates"]) == 3 and r.genotype.nodes == 3


def test_existing_run_and_changed_settings(data_root, tmp_path):
    cfg = tiny_config(data_root, tmp_path / "x", epochs=1)
    run_search(cfg)
    with pytest.raises(ConfigError, match="already there"):
        run_search(cfg)
    with pytest.raises(ConfigError, match="setting 'seed'"):
        run_search(tiny_config(data_root, tmp_path / "x", epochs=1, seed=9), resume=True)


@pytest.mark.slow
def test_resume_after_kill_gives_the_uninterrupted_result(data_root, tmp_path):
    # full 32 x 32 images, batch 1: each epoch lasts far longer than the 50 ms poll, so the kill lands mid-run
    args = ["--data", str(data_root), "--size", str(SIZE), "--crop", "0", "--batch-size", "1", "--epochs", "5",
            "--device", "cpu"]
    cli = [sys.executable, "-m", "nas_recon.cli.main", "search"]
    subprocess.run([*cli, *args, "--out", str(tmp_path / "full")], check=True, capture_output=True)
    proc = subprocess.Popen([*cli, *args, "--out", str(tmp_path / "killed")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "genotype.json").exists(), "the run finished before it could be killed"
    log = tmp_path / "killed" / "search_log.csv"
    first_epoch = log.read_text().splitlines()[1]  # includes its wall-clock seconds
    subprocess.run([*cli, *args, "--out", str(tmp_path / "killed"), "--resume"], check=True, capture_output=True)
    # epoch 1 came from the checkpoint, not from a silent restart (its measured seconds would differ)
    assert log.read_text().splitlines()[1] == first_epoch
    a = json.loads((tmp_path / "full" / "genotype.json").read_text())
    b = json.loads((tmp_path / "killed" / "genotype.json").read_text())
    assert a["cell"] == b["cell"] and a["alphas"] == b["alphas"]
    assert len((tmp_path / "killed" / "search_log.csv").read_text().splitlines()) == 6


def test_skip_cap_in_a_search(data_root, tmp_path):
    r = run_search(tiny_config(data_root, tmp_path / "k", epochs=1, max_skips=0))
    assert all(op != "skip_connect" for n in r.genotype.cell for op in n.ops)
    extra = load_genotype(tmp_path / "k" / "genotype.json").extra
    assert extra["skips"] == 0 and extra["max_skips"] == 0 and extra["skips_uncapped"] >= 0
    rows = list(csv.DictReader((tmp_path / "k" / "search_log.csv").open()))
    assert rows[0]["skips"] == "0"


def test_gdas_samples_one_op_per_edge_and_is_deterministic(data_root, tmp_path):
    from nni.nas.oneshot.pytorch.supermodule.differentiable import GumbelSoftmax

    from nas_recon.search.supernet import sample_one_op

    net = build_supernet(load_space("paper_a"), make_strategy("gdas", 3e-4, 5.0))
    assert sample_one_op(net) > 0
    soft = next(m for m in net.modules() if isinstance(m, GumbelSoftmax))
    w = soft(torch.zeros(5))
    assert sorted(w.tolist()) == [0.0, 0.0, 0.0, 0.0, 1.0]  # one op per edge on the forward pass
    a = run_search(tiny_config(data_root, tmp_path / "g1", strategy="gdas"))
    b = run_search(tiny_config(data_root, tmp_path / "g2", strategy="gdas"))
    run_search(tiny_config(data_root, tmp_path / "d", strategy="darts"))
    ga = json.loads((tmp_path / "g1" / "genotype.json").read_text())
    assert a.genotype.cell == b.genotype.cell
    assert ga["alphas"] == json.loads((tmp_path / "g2" / "genotype.json").read_text())["alphas"]
    assert ga["alphas"] != json.loads((tmp_path / "d" / "genotype.json").read_text())["alphas"]
    assert ga["search"]["strategy"] == "gdas" and ga["search"]["tau_max"] == 10.0
    with pytest.raises(ConfigError, match="tau"):
        run_search(tiny_config(data_root, tmp_path / "bad", strategy="gdas", tau_max=0.1, tau_min=1.0))


def test_expected_cost_penalty_values_and_gradient():
    from nas_recon.search.penalty import ExpectedCost

    alphas = [torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)]
    pen = ExpectedCost(alphas, ["a", "b"], {"a": 4.0, "b": 2.0, "none": 0.0})
    assert float(pen().detach()) == pytest.approx((1.0 + 0.5 + 0.0) / 3)  # uniform softmax: mean relative cost
    pen().backward()
    g = alphas[0].grad
    assert g[0] > 0 > g[2] and g[0] > g[1]  # descending the penalty moves weight from dear ops to cheap ones
    with torch.no_grad():
        for a in alphas:
            a.copy_(torch.tensor([30.0, 0.0, 0.0]))
    assert float(pen().detach()) == pytest.approx(1.0, abs=1e-6)


def test_cost_aware_search_prefers_cheap_ops_and_caches_its_table(data_root, tmp_path):
    free = run_search(tiny_config(data_root, tmp_path / "f", epochs=2, arch_lr=3e-2, cost="flops"))
    dear = run_search(tiny_config(data_root, tmp_path / "d", epochs=2, arch_lr=3e-2, cost="flops", cost_weight=50.0))
    table = json.loads((tmp_path / "d" / "op_costs.json").read_text())
    assert table["costs"]["skip_connect"] == 0 and table["costs"]["sep_conv_3x3"] > 0
    log = list(csv.DictReader(open(tmp_path / "d" / "search_log.csv")))
    free_log = list(csv.DictReader(open(tmp_path / "f" / "search_log.csv")))
    assert float(log[-1]["expected_cost"]) < float(free_log[-1]["expected_cost"])
    assert all(op == "skip_connect" for n in dear.genotype.cell for op in n.ops)  # the only free real op
    assert dear.genotype.extra["cost_weight"] == 50.0 and free.genotype.extra["op_costs"] == table["costs"]
    with pytest.raises(ConfigError, match="--cost-weight"):
        run_search(tiny_config(data_root, tmp_path / "x", cost_weight=1.0))


def test_unrolled_hypergradient_matches_autograd():
    """darts2's finite-difference architecture gradient equals the exact gradient through the virtual step."""
    from torch.func import functional_call

    from nas_recon.search.supernet import arch_parameters
    from nas_recon.search.unrolled import unrolled_alpha_grads
    from nas_recon.space.spaces import SearchSpace

    torch.manual_seed(0)
    space = SearchSpace("tiny", ("sep_conv_3x3", "dil_2_conv_3x3", "skip_connect", "none"), nodes=2, cells=1,
                        cascades=1, channels=4)
    net = build_supernet(space, make_strategy("darts", 3e-4, None)).double()
    with torch.no_grad():
        for a in arch_parameters(net):
            a.normal_(0, 0.5)
    alphas = arch_parameters(net)
    ids = {id(a) for a in alphas}
    named = [(n, p) for n, p in net.named_parameters() if id(p) not in ids]
    weights = [p for _, p in named]
    xis = [0.05 * (1 + i % 3) for i in range(len(weights))]  # per-weight steps, like the per-conv lrs
    x, t = torch.randn(2, 2, 12, 12, dtype=torch.float64), torch.randn(2, 2, 12, 12, dtype=torch.float64)
    xv, tv = torch.randn_like(x), torch.randn_like(t)
    k, mask = torch.zeros_like(x), torch.zeros(1, 1, 1, 12, dtype=torch.float64)  # mask 0: fusion keeps the net

    def loss(params=None, val=False):
        inp, tgt = (xv, tv) if val else (x, t)
        out = net(inp, k, mask) if params is None else functional_call(net, params, (inp, k, mask))
        return (out - tgt).pow(2).mean()

    before = [w.detach().clone() for w in weights]
    fd, _ = unrolled_alpha_grads(loss, lambda: loss(val=True), weights, alphas, xis, eps=1e-5)
    assert all(torch.equal(w, b) for w, b in zip(weights, before, strict=True))  # weights restored exactly
    g = torch.autograd.grad(loss(), weights, create_graph=True)
    moved = {n: w - xi * gi for (n, w), gi, xi in zip(named, g, xis, strict=True)}
    exact = torch.autograd.grad(loss(moved, val=True), alphas)
    for a, b in zip(fd, exact, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    # and the second-order term is not negligible here: first-order DARTS would differ
    first_order = torch.autograd.grad(loss({n: w.detach() for n, w in moved.items()}, val=True), alphas)
    assert max(float((a - b).abs().max()) for a, b in zip(first_order, exact, strict=True)) > 1e-6


def test_darts2_search_runs_and_resumes_settings(data_root, tmp_path):
    r = run_search(tiny_config(data_root, tmp_path / "u", epochs=1, strategy="darts2"))
    assert r.genotype.nodes == 3 and r.genotype.extra["search"]["strategy"] == "darts2"
    log = list(csv.DictReader(open(tmp_path / "u" / "search_log.csv")))
    assert float(log[0]["alpha_loss"]) > 0 and float(log[0]["w_loss"]) > 0


def test_lean_cell_equals_nni_cell_in_output_and_alpha_gradients():
    space = load_space("paper_a")
    x, mask = torch.randn(2, 2, 16, 16), (torch.rand(1, 1, 1, 16) < 0.3).float()
    k = torch.randn(2, 2, 16, 16)
    outs = []
    for lean in (False, True):
        torch.manual_seed(0)
        net = build_supernet(space, make_strategy("darts", 3e-4, None, lean=lean))
        torch.manual_seed(1)
        with torch.no_grad():
            for a in arch_parameters(net):
                a.normal_(0, 1)
        y = net(x, k, mask)
        grads = torch.autograd.grad(y.square().mean(), arch_parameters(net))
        outs.append((y.detach(), grads, type(first_cell(net)).__name__))
    (y0, g0, n0), (y1, g1, n1) = outs
    assert (n0, n1) == ("DifferentiableMixedCell", "LeanMixedCell")
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g0, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_pcdarts_cell_partial_channels_and_edge_normalisation():
    from nas_recon.search.mixed import PC_K, PartialChannelCell, channel_shuffle

    x = torch.arange(2 * 8 * 3 * 3, dtype=torch.float32).view(2, 8, 3, 3)
    y = channel_shuffle(x, 4)
    assert sorted(y[0, :, 0, 0].tolist()) == sorted(x[0, :, 0, 0].tolist())  # a permutation of channels
    assert [int(v) // 9 for v in y[0, :, 0, 0].tolist()] == [0, 2, 4, 6, 1, 3, 5, 7]
    space = load_space("paper_a")
    torch.manual_seed(0)
    net = build_supernet(space, make_strategy("pcdarts", 3e-4, None), partial=True)
    cell = first_cell(net)
    assert isinstance(cell, PartialChannelCell)
    op = next(iter(cell.ops[0][0].values()))
    assert op[2].in_channels == space.channels // PC_K  # sep conv's pointwise conv runs on C / K channels
    betas = [p for name, p in cell._arch_alpha.items() if "/beta_" in name]
    assert len(betas) == space.nodes and {id(p) for p in betas} <= {id(p) for p in arch_parameters(net)}
    other = net.net.bodies[2].cells[1]
    assert all(other._arch_alpha[k] is v for k, v in cell._arch_alpha.items())  # shared by every cell
    with torch.no_grad():
        betas[0].copy_(torch.tensor([2.0, 0.0]))
    w = edge_weights(net, space)
    b = torch.softmax(torch.tensor([2.0, 0.0]), 0)
    assert sum(w[(0, 0)].values()) == pytest.approx(float(b[0]), rel=1e-5)  # op weights x the edge's beta
    assert sum(w[(0, 1)].values()) == pytest.approx(float(b[1]), rel=1e-5)
    y = net(torch.randn(2, 2, 16, 16), torch.zeros(2, 2, 16, 16), torch.zeros(1, 1, 1, 16))
    assert y.shape == (2, 2, 16, 16)


def test_pcdarts_search_runs(data_root, tmp_path):
    r = run_search(tiny_config(data_root, tmp_path / "p", epochs=1, strategy="pcdarts"))
    assert r.genotype.nodes == 3 and r.genotype.channels == 32  # the derived cell uses every channel
    assert count_params(build_from_genotype(r.genotype)) > 0


@pytest.mark.parametrize("strategy", ["darts", "pcdarts", "gdas"])
def test_supernet_candidates_get_the_scaled_init(strategy):
    """NNI builds the cell candidates while mutating the space: they must still get the init rule (the depthwise
    conv of a separable op has He std sqrt(2/9), not PyTorch's ~0.19) and the stack must keep its signal."""
    import math

    torch.manual_seed(0)
    net = build_supernet(load_space("paper_a"), make_strategy(strategy, 3e-4, 5.0), partial=strategy == "pcdarts")
    dw = [p for n, p in net.named_parameters() if n.endswith("sep_conv_3x3.1.weight")]
    assert len(dw) == 3 * 3 * 9  # cascades x cells x edges
    assert all(abs(float(p.detach().std()) / math.sqrt(2 / 9) - 1) < 0.4 for p in dw)
    body = net.net.bodies[0]
    x = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        feats = [body.stem0(x)]
        feats.append(body.stem1(feats[0]))
        for cell in body.cells:
            feats.append(cell(feats[-2], feats[-1]))
        assert torch.equal(body(x), x)  # zero output conv: each module starts as the identity
    last = float(feats[-1].pow(2).mean().sqrt() / x.pow(2).mean().sqrt())
    assert 0.1 < last < 4.0, last  # PyTorch's default init on the candidates: ~0.005


def test_cell_bias_reaches_every_supernet_conv():
    """search --cell-bias: stems, preprocessing, every candidate op and the output conv carry a zero bias."""
    from dataclasses import replace

    net = build_supernet(replace(load_space("paper_a"), bias=True), make_strategy("darts", 3e-4, 5.0))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.bias is not None and not m.bias.any() for m in convs)
    plain = build_supernet(load_space("paper_a"), make_strategy("darts", 3e-4, 5.0))
    assert all(m.bias is None for m in plain.modules() if isinstance(m, torch.nn.Conv2d))
    assert count_params(net) - count_params(plain) == sum(m.out_channels for m in convs)


def test_cell_bias_search_writes_a_biased_genotype_and_resume_keeps_the_setting(data_root, tmp_path):
    from nas_recon.models.registry import build_model, spec_for_genotype

    r = run_search(tiny_config(data_root, tmp_path / "b", epochs=1, cell_bias=True))
    g = load_genotype(tmp_path / "b" / "genotype.json")
    assert g.bias and r.genotype.bias
    net = build_model(spec_for_genotype(g))  # what retrain/report/cost build from the genotype
    assert all(m.bias is not None for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    with pytest.raises(ConfigError, match="setting 'cell_bias' was True, now False"):
        run_search(tiny_config(data_root, tmp_path / "b", epochs=2), resume=True)


def test_op_importance_is_the_loss_rise_without_each_op_and_restores_alphas():
    from nas_recon.search.perturb import op_importance

    torch.manual_seed(0)
    names = ["a", "b", "c"]
    edges = [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]  # 2 nodes
    alphas = {e: torch.nn.Parameter(torch.randn(4)) for e in edges}  # 3 real ops + implicit none
    values = torch.tensor([1.0, 2.0, 5.0, 0.0])  # what each op (none last) would put out
    target = 2.2

    def mix(a: torch.Tensor) -> float:
        return float((torch.softmax(a.detach(), 0) * values).sum())

    def loss(model) -> float:
        return sum(abs(mix(a) - target) for a in model.values())

    before = {e: a.detach().clone() for e, a in alphas.items()}
    imp, base = op_importance(alphas, names, loss, alphas)
    assert base == pytest.approx(loss(alphas))
    assert all(torch.equal(alphas[e], before[e]) for e in edges)  # every alpha restored
    assert sorted(imp) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    a = alphas[(1, 1)]  # recompute "op b removed" by hand
    w = torch.softmax(torch.cat([a[:1], a[2:]]).detach(), 0)
    without_b = float((w * values[[0, 2, 3]]).sum())
    assert imp[(1, 1)]["b"] == pytest.approx(abs(without_b - target) - abs(mix(a) - target), abs=1e-6)


def test_perturbation_selection_derives_from_importance(data_root, tmp_path):
    from nas_recon.search.derive import derive_cell

    run_search(tiny_config(data_root, tmp_path / "a", epochs=1, select="perturb"))
    d = json.loads((tmp_path / "a" / "genotype.json").read_text())
    assert d["select"] == "perturb" and isinstance(d["alpha_split_l1"], float) and "alpha_cell" in d
    space = load_space("paper_a")
    imp = {tuple(int(x) for x in k[4:].split("<-")): v for k, v in d["importance"].items()}
    assert len(imp) == 9 and all(set(v) == set(space.real_ops) for v in imp.values())
    g = load_genotype(tmp_path / "a" / "genotype.json")
    assert g.cell == derive_cell(imp, space.nodes, space.ops)
    # same search, the paper's rule: identical alphas, the cell the alpha rule gives
    run_search(tiny_config(data_root, tmp_path / "b", epochs=1))
    b = json.loads((tmp_path / "b" / "genotype.json").read_text())
    assert b["alphas"] == d["alphas"] and load_genotype(tmp_path / "b" / "genotype.json").describe() == d["alpha_cell"]
    with pytest.raises(ConfigError, match="--select perturb: needs a darts"):
        run_search(tiny_config(data_root, tmp_path / "c", strategy="gdas", select="perturb"))


def test_a_diverged_search_stops_with_its_last_good_checkpoint_and_writes_no_genotype(data_root, tmp_path, capsys):
    from nas_recon.cli.main import main

    out = tmp_path / "nan"
    argv = ["search", "--data", str(data_root), "--out", str(out), "--epochs", "2", "--crop", "16", "--size",
            str(SIZE), "--batch-size", "2", "--arch-lr", "1e30", "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "search diverged" in err and "last good checkpoint" in err and len(err.strip().splitlines()) == 1
    assert not (out / "genotype.json").exists()


def test_a_genotype_with_non_finite_values_is_never_written(tmp_path):
    import numpy as np

    from nas_recon.errors import NasReconError
    from nas_recon.genotype import genotype_for, save_genotype
    from nas_recon.search.random_cells import sample_genotype

    g = genotype_for(load_space("paper_a"), sample_genotype(load_space("paper_a"), np.random.default_rng(0)).cell,
                     {"alphas": {"0-0": {"none": float("nan")}}})
    with pytest.raises(NasReconError, match="non-finite"):
        save_genotype(g, tmp_path / "g.json")
    assert not (tmp_path / "g.json").exists()


def test_options_a_search_would_ignore_or_cannot_meet_are_refused(data_root, tmp_path):
    with pytest.raises(ConfigError, match="--strategy random: .*--max-skips and --cost would be ignored"):
        run_search(tiny_config(data_root, tmp_path / "a", strategy="random", max_skips=1))
    space = tmp_path / "skips.toml"
    space.write_text('name = "skips"\nops = ["skip_connect", "none"]\n')
    with pytest.raises(ConfigError, match="the cap cannot be met"):
        run_search(tiny_config(data_root, tmp_path / "b", space=str(space), max_skips=0))
    assert not (tmp_path / "b").exists()
    run_search(tiny_config(data_root, tmp_path / "c", epochs=1))
    with pytest.raises(ConfigError, match="setting 'select' was 'alpha', now 'perturb'"):
        run_search(tiny_config(data_root, tmp_path / "c", epochs=1, select="perturb"), resume=True)


def test_genotype_with_duplicate_keys_or_absurd_nesting_is_refused(tmp_path):
    from nas_recon.genotype import load_genotype as load

    dup = tmp_path / "dup.json"
    dup.write_text('{"format": "nas-recon-genotype", "cells": 3, "cells": 3000000}')
    with pytest.raises(ConfigError, match="key 'cells' appears twice"):
        load(dup)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load(deep)


@pytest.mark.parametrize("strategy", ["darts", "darts2"])
def test_bf16_mixed_search_tracks_fp32(data_root, tmp_path, strategy):
    """search --precision bf16-mixed (issue 21): the supernet under autocast, fusion and losses in float32; the
    losses of each epoch stay within bf16 rounding of the fp32 search, the precision is recorded and fixed."""
    from nas_recon.cli.main import main

    logs = {}
    for precision in ("32", "bf16-mixed"):
        out = tmp_path / precision
        assert main(["search", "--data", str(data_root), "--out", str(out), "--epochs", "2", "--crop", "16",
                     "--size", str(SIZE), "--batch-size", "2", "--strategy", strategy, "--device", "cpu",
                     "--precision", precision]) == 0
        logs[precision] = list(csv.DictReader((out / "search_log.csv").open()))
    for a, b in zip(logs["32"], logs["bf16-mixed"], strict=True):
        assert float(b["w_loss"]) == pytest.approx(float(a["w_loss"]), rel=0.05)
        assert float(b["alpha_loss"]) == pytest.approx(float(a["alpha_loss"]), rel=0.05)
    assert json.loads((tmp_path / "bf16-mixed" / "run.json").read_text())["config"]["precision"] == "bf16-mixed"
    assert main(["search", "--data", str(data_root), "--out", str(tmp_path / "bf16-mixed"), "--epochs", "2",
                 "--crop", "16", "--size", str(SIZE), "--batch-size", "2", "--strategy", strategy, "--device", "cpu",
                 "--resume"]) == 2  # precision was bf16-mixed, now 32


def test_search_writes_op_weights_to_tensorboard(data_root, tmp_path):
    """With tensorboard installed, a search's event files hold its losses and every edge's op weights per epoch."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from nas_recon.cli.main import main

    out = tmp_path / "s"
    assert main(["search", "--data", str(data_root), "--out", str(out), "--epochs", "2", "--crop", "16", "--size",
                 str(SIZE), "--batch-size", "2", "--device", "cpu"]) == 0
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss/weights", "loss/alphas", "decision/chosen_margin"} <= tags
    alpha_tags = {t for t in tags if t.startswith("alpha/")}
    assert len(alpha_tags) == 9 * len(load_space("paper_a").ops)  # 9 edges of a 3-node cell, every op
    rows = [r for r in csv.DictReader((out / "alphas.csv").open()) if r["epoch"] == "2"]
    r = rows[0]
    moved = acc.Scalars(f"alpha/n{r['node']}_{r['input']}/{r['op']}")
    assert [e.step for e in moved] == [1, 2] and moved[-1].value == pytest.approx(float(r["weight"]))
