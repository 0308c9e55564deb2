"""Ranking fidelity: one-shot scores of cells in the trained supernet, Kendall's tau, the report's line."""

import json

import numpy as np
import pytest
import torch

from nas_recon.errors import ConfigError
from nas_recon.genotype import Genotype, Node
from nas_recon.search.fidelity import (
    bootstrap_tau,
    kendall_tau,
    load_search,
    oneshot_scores,
    read_fidelity,
    selected,
    verdict,
    write_fidelity,
)
from nas_recon.search.supernet import build_supernet, edge_alpha_map, make_strategy, sample_one_op
from nas_recon.space import load_space

CELL = Genotype((Node((0, 1), ("sep_conv_3x3", "dil_2_conv_3x3")), Node((1, 2), ("dil_3_conv_3x3", "skip_connect")),
                 Node((0, 3), ("dil_2_conv_3x3", "sep_conv_3x3"))), "paper_a", 32, 3, 3)


def supernet(strategy: str):
    torch.manual_seed(0)
    net = build_supernet(load_space("paper_a"), make_strategy(strategy, 3e-4, 5.0), partial=strategy == "pcdarts")
    if strategy == "gdas":
        sample_one_op(net)
    for p in net.parameters():  # trained-looking weights and alphas (the init's output convs are zero)
        p.data.normal_(0, 1.0 if p.dim() == 1 else 0.05)
    return net.eval()


def op_weights(net, used: bool):
    """Weights of every candidate op the cell uses (used=True) or does not use (False), over all cells."""
    want = {(i, j): op for i, n in enumerate(CELL.cell) for j, op in zip(n.inputs, n.ops, strict=True)}
    out = []
    for body in net.net.bodies:
        for cell in body.cells:
            for i, node_ops in enumerate(cell.ops):
                for j, ops in enumerate(node_ops):
                    for name, op in ops.items():
                        if (want.get((i, j)) == name) == used:
                            out += [p for p in op.parameters()]
    return out


@pytest.mark.parametrize("strategy", ["darts", "pcdarts", "gdas"])
def test_selected_supernet_computes_the_cell_alone_and_restores_the_alphas(strategy):
    net = supernet(strategy)
    space = load_space("paper_a")
    before = {k: a.detach().clone() for k, a in edge_alpha_map(net, space).items()}
    x = torch.randn(1, 2, 16, 16)
    mask = torch.ones(1, 1, 1, 16)
    mask[..., ::3] = 0
    with torch.no_grad(), selected(net, space, CELL):
        y = net(x, x, mask)
        assert torch.equal(net(x, x, mask), y)  # deterministic, even for GDAS's Gumbel sampling
        for p in op_weights(net, used=False):
            p.add_(torch.randn_like(p))  # ops the cell does not use do not matter ...
        assert y.abs().mean() > 0.1 and torch.allclose(net(x, x, mask), y, atol=1e-5)
        for p in op_weights(net, used=True)[:1]:
            p.add_(torch.randn_like(p))  # ... the cell's own ops do
        assert not torch.allclose(net(x, x, mask), y, atol=1e-4)
    after = edge_alpha_map(net, space)
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_selected_refuses_a_cell_of_another_space():
    net = supernet("darts")
    other = Genotype(tuple(Node((0, 1), ("conv_9x1_1x9", "sep_conv_3x3")) for _ in range(3)), "paper_b", 32, 3, 3)
    with pytest.raises(ConfigError, match="'conv_9x1_1x9' is not a candidate"):
        with selected(net, load_space("paper_a"), other):
            pass


def test_kendall_tau_sign_and_bootstrap_interval():
    psnr = [27.0, 27.5, 28.0, 28.5, 29.0, 29.5, 30.0, 30.5]
    loss = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]  # lower loss = higher PSNR: perfect ranking
    assert kendall_tau(loss, psnr) == pytest.approx(1.0)
    assert kendall_tau(loss[::-1], psnr) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    noise = list(rng.permutation(loss))
    tau = kendall_tau(noise, psnr)
    lo, hi = bootstrap_tau(noise, psnr, n=500)
    assert lo <= tau <= hi and lo < 0 < hi
    assert "cannot rank" in verdict(tau, lo, hi) and "ranks cells as retraining" in verdict(0.9, 0.5, 1.0)
    assert bootstrap_tau(loss, psnr, n=300) == (pytest.approx(1.0), pytest.approx(1.0))


def test_oneshot_scores_of_a_finished_search_and_the_report_line(data_root, tmp_path):
    from test_search import tiny_config

    from nas_recon.report.build import make_report
    from nas_recon.search.random_cells import sample_genotype
    from nas_recon.search.run import fixed_batches, load_splits, run_search, split_dataset, split_loader
    from nas_recon.train.recipe import load_recipe
    from nas_recon.train.retrain import RetrainConfig, run_retrain

    cfg = tiny_config(data_root, tmp_path / "s", epochs=1)
    run_search(cfg)
    net, loaded, space = load_search(tmp_path / "s")
    assert loaded.crop == cfg.crop and space.name == "paper_a"
    _, a_files = load_splits(loaded)
    batches = fixed_batches(split_loader(loaded, split_dataset(loaded, a_files, 1), 1), 2)
    rng = np.random.default_rng(0)
    cells = [sample_genotype(space, rng) for _ in range(3)]
    s1 = oneshot_scores(net, space, cells, batches, torch.device("cpu"))
    s2 = oneshot_scores(net, space, cells, batches, torch.device("cpu"))
    assert s1 == s2 and len(set(s1)) == 3 and all(np.isfinite(s1))
    assert read_fidelity(tmp_path / "s") is None
    write_fidelity(tmp_path / "s", {"tau": -0.1, "ci95": [-0.6, 0.5], "cells": 9, "budget": "standard",
                                    "verdict": verdict(-0.1, -0.6, 0.5)})
    assert read_fidelity(tmp_path / "s")["cells"] == 9
    recipe = load_recipe("quick")
    recipe.epochs, recipe.crop, recipe.val_max_slices, recipe.repeats = 1, 16, 1, 1
    run_retrain(RetrainConfig(str(data_root), str(tmp_path / "r"), recipe, genotype=str(tmp_path / "s" /
                                                                                           "genotype.json"),
                              size=32, device="cpu"))
    rep = make_report([tmp_path / "s", tmp_path / "r"], tmp_path / "rep", data_root / "test", 32,
                      classical=("zero-filled",), latency_repeats=1)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Ranking fidelity (9 cells retrained at the standard budget): the supernet cannot rank" in md
    assert "space paper_a, bias-free cells" in md and "searched (paper_a, bias-free)" in md
    assert rep["budget_notes"] and "does not show search paying off" in rep["budget_notes"][0]
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["searched_cells"][0]["fidelity"]["tau"] == -0.1


def test_load_search_refuses_what_is_not_a_finished_search(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"kind": "retrain"}))
    with pytest.raises(ConfigError, match="not a search run"):
        load_search(tmp_path)
    (tmp_path / "run.json").write_text("{")
    with pytest.raises(ConfigError, match="run.json: not a readable search run record"):
        load_search(tmp_path)
