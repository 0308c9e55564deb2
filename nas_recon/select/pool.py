"""The selection's pool: candidates inside a FLOPs band, each recorded with its origin.

Origins: `darts` (the DARTS stage's best-scored cell inside the band), `handcrafted` (the space's handcrafted points,
DC-CNN and MoDL, at the width that meets the band), `supernet` (ops drawn from the supernet's op weights, macro
choices drawn uniformly), `macro` (the DARTS cell, macro choices drawn uniformly) and `random` (ops and macro
choices drawn uniformly). A macro space's width is then set to the channel count that meets the band (nearest the
target); a space of fixed width keeps a draw only when it lies in the band. Every candidate is checked against the
band by thop on its whole network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nas_recon.errors import ConfigError
from nas_recon.genotype import Genotype, Node, chain_cell, genotype_for
from nas_recon.search.budget import FlopsBand, check_in_band, fit_channels, genotype_flops
from nas_recon.search.derive import EdgeWeights, edges
from nas_recon.search.random_cells import sample_cell
from nas_recon.space.spaces import SearchSpace

ORIGINS = ("darts", "handcrafted", "supernet", "macro", "random")
DRAWN = ("supernet", "macro", "random")  # the origins the rest of the pool cycles through
MACRO = ("cascades", "cells", "shared", "dc")  # drawn uniformly; channels then meet the band


@dataclass(frozen=True)
class Candidate:
    """A network of the pool and where it came from."""

    genotype: Genotype
    origin: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "note": self.note, "network": self.genotype.summary()}


def identity(g: Genotype) -> tuple:
    """What makes two candidates the same network."""
    return (g.backbone, g.cell, g.cascades, g.cells, g.channels, g.shared, g.dc, g.bias)


def draw_macro(space: SearchSpace, rng: np.random.Generator) -> dict[str, Any]:
    """Uniform macro choices (the width is set by the band afterwards)."""
    out = {}
    for key in MACRO:
        vals = space.values(key)
        out[key] = vals[int(rng.integers(len(vals)))]
    return out


def in_band(g: Genotype, space: SearchSpace, band: FlopsBand) -> Genotype | None:
    """`g` at the width among the space's channel choices that meets the band (None: none does)."""
    return fit_channels(g, band, space.values("channels"))


def random_network(space: SearchSpace, band: FlopsBand | None, rng: np.random.Generator, tries: int = 2000
                   ) -> Genotype | None:
    """A uniformly drawn network of the space (ops, then macro choices) inside the band; None after `tries` draws.
    Without a band: a uniform cell at the supernet's point."""
    for _ in range(tries):
        cell = sample_cell(space.nodes, space.ops, rng, space.backbone)
        g = genotype_for(space, cell, **(draw_macro(space, rng) if space.is_macro else {}))
        if band is None:
            return g
        fit = in_band(g, space, band)
        if fit is not None:
            return fit
    return None


def drawn_cell(space: SearchSpace, weights: EdgeWeights, rng: np.random.Generator) -> tuple[Node, ...]:
    """A cell drawn from the supernet's op weights: per edge an op with probability proportional to its weight
    (`none` left out); a dag node's two inputs drawn in proportion to their edges' strongest op."""
    real = list(space.real_ops)

    def op_of(edge: tuple[int, int]) -> str:
        p = np.array([max(weights[edge][o], 0.0) for o in real])
        p = p / p.sum() if p.sum() > 0 else np.full(len(real), 1 / len(real))
        return real[int(rng.choice(len(real), p=p))]

    if space.backbone == "chain":
        return chain_cell([op_of((k, k)) for k in range(space.nodes)])
    cell = []
    for i in range(space.nodes):
        ins = [j for _, j in (e for e in edges(space.nodes) if e[0] == i)]
        s = np.array([max(max(weights[(i, j)][o] for o in real), 1e-12) for j in ins])
        pick = sorted(int(ins[k]) for k in rng.choice(len(ins), size=2, replace=False, p=s / s.sum()))
        cell.append(Node(tuple(pick), tuple(op_of((i, j)) for j in pick)))
    return tuple(cell)


def build_pool(space: SearchSpace, band: FlopsBand, n: int, seed: int, proposal: Genotype | None = None,
               weights: EdgeWeights | None = None, progress: Callable[[int, int], None] | None = None
               ) -> list[Candidate]:
    """`n` distinct candidates inside `band` (seeded): the DARTS proposal, the handcrafted points, then supernet,
    macro and random draws in turn. Refused when the band admits fewer than `n` distinct networks in the draws."""
    rng = np.random.default_rng([seed, 2929])
    pool: list[Candidate] = []
    seen: set[tuple] = set()

    def add(g: Genotype | None, origin: str, note: str) -> None:
        if g is None or identity(g) in seen or len(pool) >= n:
            return
        check_in_band(g, band, f"candidate {len(pool)} ({origin})")
        seen.add(identity(g))
        pool.append(Candidate(replace(g, extra={}), origin, note))
        if progress is not None:
            progress(len(pool), n)

    if proposal is not None:
        add(proposal, "darts", "the DARTS cell of largest op weight inside the band")
    for name, point in space.points().items():
        g = genotype_for(space, chain_cell(point["ops"]), **{k: point[k] for k in MACRO})
        fixed = point.get("channels")
        g = in_band(g, space, band) if fixed is None else replace(g, channels=fixed)
        if g is not None and band.holds(genotype_flops(g)):
            add(g, "handcrafted", f"{name} structure" + (", width set to the band" if fixed is None else ""))
    origins = [o for o in DRAWN if o == "random" or (weights is not None and proposal is not None)]
    tries = 0
    while len(pool) < n:
        tries += 1
        if tries > 50 * n:
            raise ConfigError(f"--pool {n}: only {len(pool)} distinct networks of space '{space.name}' found inside "
                              f"{band.describe()} after {tries - 1} draws; ask for a smaller --pool or widen "
                              "--flops-band")
        origin = origins[(tries - 1) % len(origins)]
        if origin == "random":
            add(random_network(space, band, rng, tries=50), "random", "ops and macro choices drawn uniformly")
            continue
        cell = drawn_cell(space, weights, rng) if origin == "supernet" else proposal.cell
        g = genotype_for(space, cell, **(draw_macro(space, rng) if space.is_macro else {}))
        fit = in_band(g, space, band)
        add(fit, origin, "ops drawn from the supernet's op weights" if origin == "supernet"
            else "the DARTS cell, macro choices drawn uniformly")
    return pool
