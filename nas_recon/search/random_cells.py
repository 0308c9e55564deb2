"""Uniform sampling of derivable cells (dag: two distinct inputs per node; chain: one op per slot; no `none`)."""

from __future__ import annotations

import numpy as np

from nas_recon.genotype import Genotype, Node, chain_cell, genotype_for


def sample_cell(nodes: int, ops: tuple[str, ...], rng: np.random.Generator, backbone: str = "dag"
                ) -> tuple[Node, ...]:
    """A random derivable cell: per node two distinct inputs (index order) and two real ops (a chain: one op)."""
    real = [o for o in ops if o != "none"]
    if backbone == "chain":
        return chain_cell([real[int(k)] for k in rng.integers(len(real), size=nodes)])
    cell = []
    for i in range(nodes):
        a, b = sorted(int(j) for j in rng.choice(i + 2, size=2, replace=False))
        o1, o2 = (real[int(k)] for k in rng.integers(len(real), size=2))
        cell.append(Node((a, b), (o1, o2)))
    return tuple(cell)


def sample_genotype(space, rng: np.random.Generator, extra: dict | None = None) -> Genotype:
    """A random Genotype of `space` (at its supernet's point)."""
    return genotype_for(space, sample_cell(space.nodes, space.ops, rng, space.backbone), extra)


def to_nni_sample(cell: tuple[Node, ...]) -> dict:
    """NNI path-sampling choices for a cell (a chain cell: one op per LayerChoice)."""
    from nas_recon.search.nni_api import chain_sample, sample_of

    if all(len(n.inputs) == 1 for n in cell):
        return chain_sample(n.ops[0] for n in cell)
    return sample_of((node.inputs, node.ops) for node in cell)
