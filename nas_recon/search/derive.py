"""The paper's / DARTS derivation rule, computed from softmax edge weights (no NNI needed)."""

from __future__ import annotations

from nas_recon.genotype import Genotype, Node, genotype_for

# weights[(node, input)] = {op_name: softmax weight}, `none` included when the relaxation has it
EdgeWeights = dict[tuple[int, int], dict[str, float]]


SKIP = "skip_connect"


def derive_cell(weights: EdgeWeights, nodes: int, ops: tuple[str, ...], max_skips: int | None = None
                ) -> tuple[Node, ...]:
    """Per edge: its strongest non-`none` op; per node: the two strongest edges.

    Strength = softmax weight of the edge's strongest non-`none` op. Ties: the op listed first in
    the space wins; between edges the smaller input index wins. Inputs are returned in index order.
    `max_skips` (P-DARTS' guard against skip-connect collapse): the chosen edges keep at most that many
    skip_connect ops, those of largest weight; the others take their edge's best op other than skip.
    """
    real = [o for o in ops if o != "none"]

    def best_of(w: dict[str, float], allowed: list[str]) -> str:
        return max(allowed, key=lambda o: (w[o], -real.index(o)))

    cell: list[list[tuple[int, str]]] = []
    for i in range(nodes):
        scored = []
        for j in range(i + 2):
            best = best_of(weights[(i, j)], real)
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
                cell[i][k] = (j, best_of(weights[(i, j)], others))
    return tuple(Node((a[0], b[0]), (a[1], b[1])) for a, b in cell)


def count_skips(cell: tuple[Node, ...]) -> int:
    """skip_connect ops in a derived cell."""
    return sum(op == SKIP for node in cell for op in node.ops)


def derive_genotype(weights: EdgeWeights, space, extra: dict | None = None, max_skips: int | None = None
                    ) -> Genotype:
    """A Genotype for `space` (a SearchSpace) from edge weights."""
    cell = derive_cell(weights, space.nodes, space.ops, max_skips)
    return genotype_for(space, cell, extra)


def weights_to_json(weights: EdgeWeights) -> dict[str, dict[str, float]]:
    """{'node{i}<-{j}': {op: weight}} for the genotype JSON."""
    return {f"node{i}<-{j}": dict(w) for (i, j), w in sorted(weights.items())}


def decision_stats(weights: EdgeWeights, nodes: int, ops: tuple[str, ...]) -> dict[str, float]:
    """How decided the derivation is: per edge the normalised softmax entropy and the op margin, per node
    the edge margin, plus their minima.

    op margin of edge (i, j): weight of its strongest non-`none` op minus the runner-up non-`none` op.
    edge margin of node i: strength of its weaker chosen edge minus that of its strongest dropped edge
    (node 0 has exactly two candidate edges and is reported as 1.0, fully decided).
    """
    import math

    real = [o for o in ops if o != "none"]
    out: dict[str, float] = {}
    op_margins, edge_margins, entropies = [], [], []
    for i in range(nodes):
        strengths = []
        for j in range(i + 2):
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
