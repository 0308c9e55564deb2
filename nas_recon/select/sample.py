"""Random-architecture control: uniform derivable cells, optionally within a FLOPs band of a reference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nas_recon.cost import conv_macs
from nas_recon.defaults import SIZE
from nas_recon.errors import ConfigError
from nas_recon.genotype import Genotype, load_genotype, save_genotype
from nas_recon.models.searched import build_from_genotype
from nas_recon.outputs import check_output_files, check_run_folder
from nas_recon.search.random_cells import sample_genotype
from nas_recon.space.spaces import SearchSpace

PROXY = 32  # conv MACs scale exactly with H x W here (stride 1, size-preserving), so bands are compared at 32


def genotype_macs(g: Genotype, size: int = PROXY) -> int:
    """Conv MACs of the network a genotype builds."""
    return conv_macs(build_from_genotype(g), size)


def sample_genotypes(space: SearchSpace, n: int, seed: int, like: Genotype | None = None, tolerance: float = 0.1,
                     size: int = SIZE, max_tries: int = 5000,
                     progress: Callable[[int, int], None] | None = None, band: Any = None) -> list[Genotype]:
    """`n` distinct random genotypes (seeded); with `like`, only those within +-tolerance of its FLOPs; with a FLOPs
    `band` (nas_recon.search.budget), networks inside it (a macro space's macro choices drawn uniformly, its width
    set to meet the band: the selection's `random` draws)."""
    if n < 1:
        raise ConfigError(f"--n: expected at least 1, got {n}")
    if band is not None or space.is_macro:
        return sample_networks(space, n, seed, band, max_tries, progress)
    if not 0 < tolerance < 10:
        raise ConfigError(f"--tolerance: expected a positive fraction, got {tolerance}")
    if like is not None and like.bias and not space.bias:
        space = replace(space, bias=True)  # random cells are drawn like the reference, biases included
    rng = np.random.default_rng([seed, 777])
    ref = genotype_macs(like) if like is not None else None
    if ref is not None:
        check_reachable(space, ref, tolerance, like)
    found: list[Genotype] = []
    seen: set = set()
    for _ in range(max_tries):
        g = sample_genotype(space, rng)
        if g.cell in seen:
            continue
        seen.add(g.cell)
        macs = genotype_macs(g) if ref is not None else None
        if ref is not None and abs(macs - ref) > tolerance * ref:
            continue
        extra = {"sampled": {"seed": seed, "index": len(found), "uniform_over": "derivable cells, no none"}}
        if ref is not None:
            extra["sampled"].update({"flops_like": like.describe(), "tolerance": tolerance,
                                     "flops": macs * (size // PROXY) ** 2 if size % PROXY == 0 else None,
                                     "flops_ratio": macs / ref})
        found.append(replace(g, extra=extra))
        if progress is not None:
            progress(len(found), n)
        if len(found) == n:
            return found
    if like is None:
        raise ConfigError(f"--n: only {len(found)} distinct cells found in {max_tries} draws from space "
                          f"'{space.name}'; ask for fewer")
    raise ConfigError(f"only {len(found)} of {n} random cells found within {tolerance:.0%} of the reference FLOPs "
                      f"after {max_tries} draws (widen --tolerance)")


def sample_networks(space: SearchSpace, n: int, seed: int, band: Any, max_tries: int,
                    progress: Callable[[int, int], None] | None) -> list[Genotype]:
    """`n` distinct networks drawn uniformly (cell, then macro choices), inside `band` when given (a macro space
    without a band: the width drawn uniformly too)."""
    from nas_recon.search.budget import genotype_flops
    from nas_recon.search.derive import derive_in_band, edges
    from nas_recon.select.pool import identity, random_network

    if band is not None:  # refused at once when no network of the space meets the band
        derive_in_band({e: {o: 1.0 for o in space.ops} for e in edges(space.nodes, space.backbone)}, space, band)
    rng = np.random.default_rng([seed, 777])
    found: list[Genotype] = []
    seen: set = set()
    for _ in range(max_tries):
        g = random_network(space, band, rng, tries=50)
        if g is not None and band is None and space.is_macro:
            chans = space.values("channels")
            g = replace(g, channels=chans[int(rng.integers(len(chans)))])
        if g is None or identity(g) in seen:
            continue
        seen.add(identity(g))
        info = {"seed": seed, "index": len(found), "uniform_over": "cells and macro choices, no none",
                "flops": genotype_flops(g)}
        if band is not None:
            info.update({"flops_band": band.to_dict(), "flops_ratio": genotype_flops(g) / band.target})
        found.append(replace(g, extra={"sampled": info}))
        if progress is not None:
            progress(len(found), n)
        if len(found) == n:
            return found
    raise ConfigError(f"--n: only {len(found)} distinct networks of space '{space.name}' found in {max_tries} draws"
                      + (f" within {band.describe()}" if band is not None else "") + "; ask for fewer")


def cost_range(space: SearchSpace) -> tuple[int, int]:
    """Cheapest and dearest cell MACs of a space: every edge one op (edges of a cell all have one shape)."""
    from nas_recon.genotype import Node

    base = sample_genotype(space, np.random.default_rng(0))
    costs = [genotype_macs(replace(base, cell=tuple(Node(n.inputs, (op, op)) for n in base.cell)))
             for op in space.ops if op != "none"]
    return min(costs), max(costs)


def check_reachable(space: SearchSpace, ref: int, tolerance: float, like: Genotype) -> None:
    """Refuse a --flops-like reference no cell of the space can come within tolerance of (it would draw in vain)."""
    lo, hi = cost_range(space)
    if ref < lo * (1 - tolerance) or ref > hi * (1 + tolerance):
        raise ConfigError(f"--flops-like: the reference costs {ref / 1e6:.3g} MMACs at {PROXY}x{PROXY}, but cells of "
                          f"space '{space.name}' ({space.channels} channels, {space.cells} cells, {space.cascades} "
                          f"cascades) cost {lo / 1e6:.3g}-{hi / 1e6:.3g}; no cell can come within {tolerance:.0%} of "
                          "it (use a reference from this space, or --space)")


def sample_paths(out: Path, n: int) -> list[Path]:
    """DIR/random_00.json ... for n samples."""
    return [out / f"random_{i:02d}.json" for i in range(n)]


def check_sample_outputs(out: Path, n: int, seed: int | None = None) -> None:
    """Refuse a sample folder where a sample would replace anything but an earlier genotype (nas_recon.outputs), or
    where the new set would mix with an earlier one (another seed, or more samples than the new set replaces)."""
    check_run_folder(out, "sample")
    check_output_files(sample_paths(out, n), "genotype")
    held = sorted(out.glob("random_*.json")) if out.is_dir() else []
    if len(held) > n:
        raise ConfigError(f"--out {out}: holds a set of {len(held)} samples; writing {n} would keep {held[n].name} "
                          f"and later of the old set (a mixed set); use --n {len(held)} or another --out")
    for path in held:
        try:
            old = load_genotype(path).extra.get("sampled", {}).get("seed")
        except ConfigError:
            continue  # check_output_files decided what may be replaced
        if seed is not None and old is not None and old != seed:
            raise ConfigError(f"--out {out}: holds a set drawn with --seed {old} ({path.name}); writing --seed {seed} "
                              "would mix two sets; use the same --seed or another --out")


def write_samples(genotypes: list[Genotype], out: Path) -> list[Path]:
    """DIR/random_00.json, ... (every target checked before the first is written)."""
    paths = sample_paths(out, len(genotypes))
    seeds = {g.extra.get("sampled", {}).get("seed") for g in genotypes}
    check_sample_outputs(out, len(genotypes), seeds.pop() if len(seeds) == 1 else None)
    out.mkdir(parents=True, exist_ok=True)
    for g, p in zip(genotypes, paths, strict=True):
        save_genotype(g, p)
    return paths
