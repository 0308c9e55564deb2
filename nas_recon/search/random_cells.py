"""Uniform sampling of derivable cells (two distinct inputs per node, no `none`)."""

from __future__ import annotations

import numpy as np

from nas_recon.genotype import Genotype, Node, genotype_for


def sample_cell(nodes: int, ops: tuple[str, ...], rng: np.random.Generator) -> tuple[Node, ...]:
    """A random derivable cell: per node two distinct inputs (index order) and two real ops."""
    real = [o for o in ops if o != "none"]
    cell = []
    for i in range(nodes):
        a, b = sorted(int(j) for j in rng.choice(i + 2, size=2, replace=False))
        o1, o2 = (real[int(k)] for k in rng.integers(len(real), size=2))
        cell.append(Node((a, b), (o1, o2)))
    return tuple(cell)


def sample_genotype(space, rng: np.random.Generator, extra: dict | None = None) -> Genotype:
    """A random Genotype of `space`."""
    return genotype_for(space, sample_cell(space.nodes, space.ops, rng), extra)


def to_nni_sample(cell: tuple[Node, ...]) -> dict:
    """NNI path-sampling cell choices for a cell."""
    from nas_recon.search.nni_api import sample_of

    return sample_of((node.inputs, node.ops) for node in cell)
