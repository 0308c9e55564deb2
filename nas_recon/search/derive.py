"""The paper's / DARTS derivation rule, computed from softmax edge weights (no NNI needed), and its form under a
FLOPs band: the best-scored cell whose network lies inside the band, found exactly.

Edges: a dag cell's node i reads states 0 .. i+1 (edges (i, j)); a chain cell's node k reads state k (edge (k, k)).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

from nas_recon.errors import ConfigError
from nas_recon.genotype import Genotype, Node, chain_cell, genotype_for

# weights[(node, input)] = {op_name: softmax weight}, `none` included when the relaxation has it
EdgeWeights = dict[tuple[int, int], dict[str, float]]


SKIP = "skip_connect"


def edges(nodes: int, backbone: str = "dag") -> list[tuple[int, int]]:
    """The (node, input) edges of a cell."""
    if backbone == "chain":
        return [(k, k) for k in range(nodes)]
    return [(i, j) for i in range(nodes) for j in range(i + 2)]


def _best_of(w: dict[str, float], allowed: list[str], real: list[str]) -> str:
    """The allowed op of largest weight; ties: the op listed first in the space."""
    return max(allowed, key=lambda o: (w[o], -real.index(o)))


def derive_cell(weights: EdgeWeights, nodes: int, ops: tuple[str, ...], max_skips: int | None = None,
                backbone: str = "dag") -> tuple[Node, ...]:
    """Per edge: its strongest non-`none` op; per node: the two strongest edges (a chain: its one edge).

    Strength = softmax weight of the edge's strongest non-`none` op. Ties: the op listed first in
    the space wins; between edges the smaller input index wins. Inputs are returned in index order.
    `max_skips` (P-DARTS' guard against skip-connect collapse): the chosen edges keep at most that many
    skip_connect ops, those of largest weight; the others take their edge's best op other than skip.
    """
    real = [o for o in ops if o != "none"]
    cell: list[list[tuple[int, str]]] = []
    for i in range(nodes):
        scored = []
        for _, j in (e for e in edges(nodes, backbone) if e[0] == i):
            best = _best_of(weights[(i, j)], real, real)
            scored.append((weights[(i, j)][best], j, best))
        scored.sort(key=lambda t: (-t[0], t[1]))
        cell.append([(j, op) for _, j, op in sorted(scored[:2], key=lambda t: t[1])])
    if max_skips is not None:
        skips = sorted(((weights[(i, j)][SKIP], i, k) for i, node in enumerate(cell)
                        for k, (j, op) in enumerate(node) if op == SKIP), reverse=True)
        others = [o for o in real if o != SKIP]
        for _, i, k in skips[max_skips:]:
            if others:
                j = cell[i][k][0]
                cell[i][k] = (j, _best_of(weights[(i, j)], others, real))
    return tuple(Node(tuple(j for j, _ in node), tuple(op for _, op in node)) for node in cell)


def count_skips(cell: tuple[Node, ...]) -> int:
    """skip_connect ops in a derived cell."""
    return sum(op == SKIP for node in cell for op in node.ops)


def derive_genotype(weights: EdgeWeights, space, extra: dict | None = None, max_skips: int | None = None,
                    band: Any = None) -> Genotype:
    """A Genotype for `space` (a SearchSpace) from edge weights; with a FLOPs `band`, the best-scored one inside it
    (derive_in_band)."""
    if band is not None:
        return derive_in_band(weights, space, band, extra, max_skips)
    cell = derive_cell(weights, space.nodes, space.ops, max_skips, space.backbone)
    return genotype_for(space, cell, extra)


def cell_score(weights: EdgeWeights, cell: tuple[Node, ...]) -> float:
    """The sum of the chosen (edge, op) weights: the DARTS rule's choice maximises it when nothing constrains it."""
    return sum(weights[(i, j)][op] for i, n in enumerate(cell) for j, op in zip(n.inputs, n.ops, strict=True))


def derive_in_band(weights: EdgeWeights, space, band, extra: dict | None = None,
                   max_skips: int | None = None) -> Genotype:
    """The cell of largest score (sum of its chosen op weights) whose network's FLOPs lie in `band`, exactly.

    Unconstrained, this is the paper's rule; so when the rule's cell lies in the band it is returned as is. A dag
    space runs a knapsack over nodes (every edge of a cell has one shape, so a cell's cost is the sum of its ops'
    costs); a chain space tries every op per slot at every channel count of the space (ties: the channels nearest
    the supernet's). Refused in one line when no cell of the space can meet the band.
    """
    from nas_recon.search.budget import frame_pixel_macs, genotype_flops, op_pixel_macs

    free = derive_genotype(weights, space, extra, max_skips)
    if band.holds(genotype_flops(free)):
        return free
    real = list(space.real_ops)
    size2 = 320 * 320
    best: tuple[Any, ...] | None = None
    if space.backbone == "chain":
        for c in sorted(space.values("channels"), key=lambda c: (abs(c - space.channels), c)):
            for ops in itertools.product(real, repeat=space.nodes):
                if max_skips is not None and ops.count(SKIP) > max_skips:
                    continue
                g = genotype_for(space, chain_cell(ops), extra, channels=c)
                if not band.holds(genotype_flops(g)):
                    continue
                score = cell_score(weights, g.cell)
                if best is None or score > best[0] + 1e-12:
                    best = (score, g)
        if best is None:
            raise no_cell_in_band(space, band)
        return best[1]
    c = space.channels
    frame = space.cascades * frame_pixel_macs(space.backbone, space.nodes, space.cells, c)
    per_op = {o: space.cascades * space.cells * op_pixel_macs(o, c) for o in real}
    # states: (op cost so far, skips) -> (score, choices); nodes in order, each node's options in a fixed order
    states: dict[tuple[int, int], tuple[float, tuple]] = {(0, 0): (0.0, ())}
    for i in range(space.nodes):
        nxt: dict[tuple[int, int], tuple[float, tuple]] = {}
        for (cost, skips), (score, picks) in states.items():
            for j1, j2 in itertools.combinations(range(i + 2), 2):
                for o1, o2 in itertools.product(real, repeat=2):
                    s = skips + (o1 == SKIP) + (o2 == SKIP)
                    if max_skips is not None and s > max_skips:
                        continue
                    key = (cost + per_op[o1] + per_op[o2], s)
                    val = score + weights[(i, j1)][o1] + weights[(i, j2)][o2]
                    if key not in nxt or val > nxt[key][0] + 1e-12:
                        nxt[key] = (val, (*picks, Node((j1, j2), (o1, o2))))
        states = nxt
    for (cost, _), (score, picks) in states.items():
        if band.holds((frame + cost) * size2) and (best is None or score > best[0] + 1e-12):
            best = (score, picks)
    if best is None:
        raise no_cell_in_band(space, band)
    return genotype_for(space, best[1], extra)


def no_cell_in_band(space, band) -> ConfigError:
    """The one-line refusal when a space holds no network in a FLOPs band."""
    return ConfigError(f"--flops-target: no cell of space '{space.name}' lies within {band.describe()} (its "
                       f"networks cost {describe_range(space)}); use another target, a wider --flops-band or another "
                       "--space")


def cost_range(space) -> tuple[int, int]:
    """The cheapest and dearest network of a space (every op the cheapest or the dearest one, at the extreme macro
    choices), in conv MACs at 320 x 320."""
    from nas_recon.search.budget import genotype_flops

    real = list(space.real_ops)
    out = []
    for pick, ops in ((min, real), (max, real)):
        macro = {k: pick(space.values(k)) for k in ("cascades", "cells", "channels")}
        flops = []
        for op in ops:
            cell = chain_cell([op] * space.nodes) if space.backbone == "chain" else tuple(
                Node((0, 1), (op, op)) for _ in range(space.nodes))
            flops.append(genotype_flops(genotype_for(space, cell, **macro)))
        out.append(pick(flops))
    return out[0], out[1]


def describe_range(space) -> str:
    lo, hi = cost_range(space)
    return f"{lo / 1e9:.2f}-{hi / 1e9:.2f} G"


def weights_to_json(weights: EdgeWeights) -> dict[str, dict[str, float]]:
    """{'node{i}<-{j}': {op: weight}} for the genotype JSON."""
    return {f"node{i}<-{j}": dict(w) for (i, j), w in sorted(weights.items())}


def decision_stats(weights: EdgeWeights, nodes: int, ops: tuple[str, ...], backbone: str = "dag"
                   ) -> dict[str, float]:
    """How decided the derivation is: per edge the normalised softmax entropy and the op margin, per node
    the edge margin, plus their minima.

    op margin of edge (i, j): weight of its strongest non-`none` op minus the runner-up non-`none` op.
    edge margin of node i: strength of its weaker chosen edge minus that of its strongest dropped edge
    (node 0 of a dag cell has exactly two candidate edges, a chain node one: reported as 1.0, fully decided).
    """
    real = [o for o in ops if o != "none"]
    out: dict[str, float] = {}
    op_margins, edge_margins, entropies = [], [], []
    for i in range(nodes):
        strengths = []
        for _, j in (e for e in edges(nodes, backbone) if e[0] == i):
            w = weights[(i, j)]
            vals = sorted((w[o] for o in real), reverse=True)
            p = [v for v in w.values() if v > 0]
            ent = -sum(v * math.log(v) for v in p) / math.log(len(w)) if len(w) > 1 else 0.0
            margin = vals[0] - vals[1] if len(vals) > 1 else 1.0
            out[f"entropy_n{i}_{j}"] = round(ent, 6)
            out[f"op_margin_n{i}_{j}"] = round(margin, 6)
            op_margins.append(margin)
            entropies.append(ent)
            strengths.append(vals[0])
        strengths.sort(reverse=True)
        em = strengths[1] - strengths[2] if len(strengths) > 2 else 1.0
        out[f"edge_margin_n{i}"] = round(em, 6)
        edge_margins.append(em)
    out["min_op_margin"] = round(min(op_margins), 6)
    out["min_edge_margin"] = round(min(edge_margins), 6)
    out["mean_entropy"] = round(sum(entropies) / len(entropies), 6)
    return out


def chosen_margin(stats: dict[str, float], cell: tuple[Node, ...]) -> float:
    """The smallest margin that the derived cell depends on: op margins of its chosen edges, edge margins."""
    ms = [stats[f"op_margin_n{i}_{j}"] for i, n in enumerate(cell) for j in n.inputs]
    ms += [stats[f"edge_margin_n{i}"] for i in range(len(cell))]
    return min(ms)


def in_band(g: Genotype, band) -> bool:
    """True when the genotype's network lies in the band."""
    from nas_recon.search.budget import genotype_flops

    return band.holds(genotype_flops(g))


__all__ = ["EdgeWeights", "SKIP", "cell_score", "chosen_margin", "count_skips", "decision_stats", "derive_cell",
           "derive_genotype", "derive_in_band", "edges", "in_band", "replace", "weights_to_json"]
