"""The derivation rule on hand-made weights."""

import numpy as np
import pytest

from nas_recon.genotype import Node
from nas_recon.search.derive import chosen_margin, decision_stats, derive_cell
from nas_recon.search.random_cells import sample_cell, to_nni_sample

OPS = ("sep_conv_3x3", "dil_2_conv_3x3", "dil_3_conv_3x3", "skip_connect", "none")


def ws(*weights):
    return dict(zip(OPS, weights, strict=True))


def uniform(nodes=3):
    return {(i, j): {o: 0.2 for o in OPS} for i in range(nodes) for j in range(i + 2)}


def test_two_strongest_edges_with_their_best_ops():
    w = uniform()
    w[(0, 1)] = ws(0.1, 0.5, 0.1, 0.1, 0.2)
    w[(0, 0)] = ws(0.3, 0.1, 0.1, 0.1, 0.4)
    w[(1, 2)] = ws(0.05, 0.05, 0.6, 0.1, 0.2)
    w[(1, 0)] = ws(0.1, 0.1, 0.1, 0.5, 0.2)
    w[(2, 3)] = ws(0.45, 0.05, 0.1, 0.1, 0.3)
    w[(2, 1)] = ws(0.05, 0.05, 0.42, 0.1, 0.38)
    cell = derive_cell(w, 3, OPS)
    assert cell[0] == Node((0, 1), ("sep_conv_3x3", "dil_2_conv_3x3"))
    assert cell[1] == Node((0, 2), ("skip_connect", "dil_3_conv_3x3"))
    assert cell[2] == Node((1, 3), ("dil_3_conv_3x3", "sep_conv_3x3"))


def test_none_strongest_is_ignored():
    w = uniform()
    # edge 2->node2 is mostly `none`, but its best real op still counts with its own weight
    w[(2, 2)] = ws(0.01, 0.01, 0.01, 0.02, 0.95)
    w[(2, 0)] = ws(0.3, 0.1, 0.1, 0.1, 0.4)
    cell = derive_cell(w, 3, OPS)
    assert 2 not in cell[2].inputs and "none" not in cell[2].ops
    assert cell[2].inputs[0] == 0 and cell[2].ops[0] == "sep_conv_3x3"


def test_ties_break_deterministically():
    cell = derive_cell(uniform(), 3, OPS)
    # all equal: first op of the space, the two lowest input indices
    assert all(n == Node((0, 1), ("sep_conv_3x3", "sep_conv_3x3")) for n in cell)


def test_random_cells_are_derivable():
    rng = np.random.default_rng(0)
    for _ in range(50):
        cell = sample_cell(4, OPS, rng)
        for i, n in enumerate(cell):
            assert n.inputs[0] < n.inputs[1] < i + 2 and "none" not in n.ops
    s = to_nni_sample(cell)
    assert s["cell/op_2_0"] == cell[0].ops[0] and s["cell/input_5_1"] == [cell[3].inputs[1]]


def test_decision_stats_on_hand_made_weights():
    w = uniform()
    w[(0, 1)] = ws(0.1, 0.5, 0.1, 0.1, 0.2)  # op margin 0.4 over the runner-up real op
    w[(1, 2)] = ws(0.05, 0.05, 0.6, 0.1, 0.2)  # strongest edge of node 1 (0.6); node 1's others are 0.2
    stats = decision_stats(w, 3, OPS)
    assert stats["op_margin_n0_1"] == pytest.approx(0.4) and stats["op_margin_n0_0"] == 0.0
    assert stats["entropy_n2_0"] == pytest.approx(1.0)  # uniform = fully undecided
    assert stats["entropy_n1_2"] < 0.8
    assert stats["edge_margin_n0"] == 1.0  # node 0 has only its two edges
    assert stats["edge_margin_n1"] == pytest.approx(0.0)  # 2nd chosen edge 0.2 vs best dropped 0.2
    assert stats["min_op_margin"] == 0.0
    cell = derive_cell(w, 3, OPS)
    assert chosen_margin(stats, cell) == 0.0
    # a fully decided cell: one op dominates every edge, two edges dominate every node
    d = {(i, j): ws(0.9, 0.03, 0.03, 0.02, 0.02) if j >= i else ws(0.3, 0.2, 0.2, 0.2, 0.1)
         for i in range(3) for j in range(i + 2)}
    s2 = decision_stats(d, 3, OPS)
    assert chosen_margin(s2, derive_cell(d, 3, OPS)) == pytest.approx(0.6)


def test_skip_cap_keeps_the_strongest_skips_and_replaces_the_rest():
    """P-DARTS guard: at most N skip_connect in the cell; a capped edge takes its best op other than skip."""
    from nas_recon.search.derive import count_skips

    w = uniform()
    w[(0, 0)] = ws(0.1, 0.2, 0.1, 0.5, 0.1)
    w[(0, 1)] = ws(0.1, 0.1, 0.15, 0.55, 0.1)
    w[(1, 2)] = ws(0.25, 0.05, 0.05, 0.6, 0.05)
    w[(1, 0)] = ws(0.1, 0.1, 0.1, 0.45, 0.25)
    free = derive_cell(w, 3, OPS)
    assert count_skips(free) == 4
    capped = derive_cell(w, 3, OPS, max_skips=2)
    assert count_skips(capped) == 2
    assert [n.inputs for n in capped] == [n.inputs for n in free]  # edges stay, only ops change
    assert capped[1] == Node((0, 2), ("sep_conv_3x3", "skip_connect"))  # 0.6 kept, 0.45 -> first of tied ops
    assert capped[0] == Node((0, 1), ("dil_2_conv_3x3", "skip_connect"))  # 0.55 kept, 0.5 -> runner-up op
    assert count_skips(derive_cell(w, 3, OPS, max_skips=0)) == 0
    assert derive_cell(w, 3, OPS, max_skips=9) == free
