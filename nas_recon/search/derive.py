"""The paper's / DARTS derivation rule, computed from softmax edge weights (no NNI needed)."""

from __future__ import annotations

from nas_recon.genotype import Genotype, Node

# weights[(node, input)] = {op_name: softmax weight}, `none` included when the relaxation has it
EdgeWeights = dict[tuple[int, int], dict[str, float]]


def derive_cell(weights: EdgeWeights, nodes: int, ops: tuple[str, ...]) -> tuple[Node, ...]:
    """Per edge: its strongest non-`none` op; per node: the two strongest edges.

    Strength = softmax weight of the edge's strongest non-`none` op. Ties: the op listed first in
    the space wins; between edges the smaller input index wins. Inputs are returned in index order.
    """
    real = [o for o in ops if o != "none"]
    cell = []
    for i in range(nodes):
        scored = []
        for j in range(i + 2):
            w = weights[(i, j)]
            best = max(real, key=lambda o: (w[o], -real.index(o)))
            scored.append((w[best], j, best))
        scored.sort(key=lambda t: (-t[0], t[1]))
        top = sorted(scored[:2], key=lambda t: t[1])
        cell.append(Node((top[0][1], top[1][1]), (top[0][2], top[1][2])))
    return tuple(cell)


def derive_genotype(weights: EdgeWeights, space, extra: dict | None = None) -> Genotype:
    """A Genotype for `space` (a SearchSpace) from edge weights."""
    cell = derive_cell(weights, space.nodes, space.ops)
    return Genotype(cell, space.name, space.channels, space.cells, space.cascades, dict(extra or {}))


def weights_to_json(weights: EdgeWeights) -> dict[str, dict[str, float]]:
    """{'node{i}<-{j}': {op: weight}} for the genotype JSON."""
    return {f"node{i}<-{j}": dict(w) for (i, j), w in sorted(weights.items())}
