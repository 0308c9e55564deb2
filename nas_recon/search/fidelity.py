"""Ranking fidelity: a trained supernet's one-shot score of a cell, and how well it ranks retrained cells.

A cell's one-shot score is the supernet's L1 on fixed train_alpha batches with every edge's architecture weights
one-hot on the cell's op (and on NNI's implicit zero op for the edges the cell does not use): the supernet's
shared weights then compute exactly that cell. Kendall's tau between the scores (low is good) and the cells'
retrained PSNR (high is good) says whether the supernet ranks cells as retraining does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas_recon import stats
from nas_recon.errors import ConfigError
from nas_recon.genotype import Genotype
from nas_recon.io import atomic_write_text, read_strict_json
from nas_recon.search.mixed import PartialChannelCell
from nas_recon.search.nni_api import alphas_of, beta_key
from nas_recon.search.strategies import strategy as strategy_of
from nas_recon.search.supernet import (
    build_supernet,
    edge_alpha_map,
    first_cell,
    make_strategy,
    sample_one_op,
)
from nas_recon.space.spaces import SearchSpace, load_space

BIG = 1e4  # softmax of +-BIG logits is exactly one-hot in float32 (and Gumbel noise cannot flip it)
FIDELITY = "fidelity.json"  # written into a search run folder by bench/ranking.py, read by the report


@contextmanager
def selected(supernet: nn.Module, space: SearchSpace, cell: Genotype) -> Iterator[nn.Module]:
    """Within the block the supernet computes `cell` alone (alphas and PC-DARTS betas restored after)."""
    alphas = edge_alpha_map(supernet, space)
    names = list(first_cell(supernet).op_names)
    used = {(i, j): op for i, node in enumerate(cell.cell) for j, op in zip(node.inputs, node.ops, strict=True)}
    if len(cell.cell) != space.nodes:
        raise ConfigError(f"cell of {len(cell.cell)} nodes, the supernet's space '{space.name}' has {space.nodes}")
    for op in used.values():
        if op not in names:
            raise ConfigError(f"cell op '{op}' is not a candidate of the supernet (space '{space.name}')")
    pc = first_cell(supernet)
    betas = ({i: alphas_of(pc)[beta_key(i)] for i in range(space.nodes)}
             if isinstance(pc, PartialChannelCell) else {})
    saved = {k: a.detach().clone() for k, a in alphas.items()}
    saved_b = {i: b.detach().clone() for i, b in betas.items()}
    with torch.no_grad():
        for (i, j), a in alphas.items():
            if (i, j) not in used and len(a) == len(names):
                raise ConfigError(f"space '{space.name}' has no 'none' op, so an unused edge cannot be switched off")
        for (i, j), a in alphas.items():
            a.fill_(-BIG)
            a[names.index(used[(i, j)]) if (i, j) in used else len(names)] = BIG  # unused: NNI's implicit zero op
        for i, b in betas.items():  # edge normalisation: the node's two inputs weigh 1/2 each, the others 0
            b.fill_(-BIG)
            for j in cell.cell[i].inputs:
                b[j] = 0.0
    try:
        yield supernet
    finally:
        with torch.no_grad():
            for k, a in alphas.items():
                a.copy_(saved[k])
            for i, b in betas.items():
                b.copy_(saved_b[i])


@torch.no_grad()
def oneshot_scores(supernet: nn.Module, space: SearchSpace, cells: Sequence[Genotype], batches: list,
                   device: torch.device) -> list[float]:
    """Each cell's mean L1 on `batches` computed by the supernet's shared weights (lower is better)."""
    supernet = supernet.to(device).eval()
    out = []
    for g in cells:
        with selected(supernet, space, g):
            losses = [float(nn.functional.l1_loss(supernet(*b.inputs(device)), b.target.to(device)))
                      for b in batches]
        out.append(float(np.mean(losses)))
    return out


def load_search(run_dir: Path) -> tuple[nn.Module, Any, SearchSpace]:
    """A finished search's trained supernet (its last.pt, or an earlier nas-recon's checkpoints/last.ckpt), its
    SearchConfig and space."""
    from nas_recon.search.config import RECORD, SearchConfig

    run_json = run_dir / "run.json"
    ckpt = RECORD.resumable(run_dir) or RECORD.checkpoint(run_dir)
    try:
        meta = json.loads(run_json.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{run_json}: not a readable search run record ({e})") from None
    if not isinstance(meta, dict) or meta.get("kind") != "search" or not isinstance(meta.get("config"), dict):
        raise ConfigError(f"{run_json}: not a search run")
    known = {f.name for f in fields(SearchConfig)}
    cfg = SearchConfig(**{k: v for k, v in meta["config"].items() if k in known})
    strat = strategy_of(cfg.strategy)
    if not strat.bilevel:
        raise ConfigError(f"{run_dir}: a random one-shot search has no architecture weights to select cells with")
    space = load_space(cfg.space)
    if cfg.cell_bias:
        space = replace(space, bias=True)
    supernet = build_supernet(space, make_strategy(cfg.strategy, cfg.arch_lr, cfg.grad_clip), partial=strat.partial)
    if strat.one_op:
        sample_one_op(supernet)
    try:
        state = RECORD.checkpoint_io().load_checkpoint(ckpt)["state_dict"]
    except ConfigError as e:
        raise ConfigError(f"{e} (not a readable search checkpoint)") from None
    prefix = "training_module.model."
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    try:
        supernet.load_state_dict(state)
    except RuntimeError as e:
        raise ConfigError(f"{ckpt}: does not match the supernet of {run_json} ({str(e).splitlines()[0]})") from None
    return supernet, cfg, space


def kendall_tau(scores: Sequence[float], psnrs: Sequence[float]) -> float:
    """Kendall's tau-b between -score (low loss = good) and retrained PSNR: +1 = the supernet ranks as retraining
    (nan when undefined)."""
    tau = stats.kendall_tau(-np.asarray(scores, float), psnrs)
    return math.nan if tau is None else tau


def bootstrap_tau(scores: Sequence[float], psnrs: Sequence[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of Kendall's tau, resampling cells (ties-only resamples skipped)."""
    rng = np.random.default_rng(seed)
    s, p = np.asarray(scores, float), np.asarray(psnrs, float)
    taus = []
    for _ in range(n):
        idx = rng.integers(len(s), size=len(s))
        if len(set(s[idx])) > 1 and len(set(p[idx])) > 1:
            taus.append(kendall_tau(s[idx], p[idx]))
    if not taus:
        return math.nan, math.nan
    lo, hi = np.percentile(taus, [2.5, 97.5])
    return float(lo), float(hi)


def verdict(tau: float, lo: float, hi: float) -> str:
    """One line for the report beside the genotype."""
    if math.isnan(lo) or lo <= 0:
        return (f"the supernet cannot rank cells here: Kendall's tau {tau:+.2f} against retrained PSNR, 95 % "
                f"interval [{lo:+.2f}, {hi:+.2f}] includes 0, so its choice is no better evidenced than a random cell")
    return (f"the supernet ranks cells as retraining does: Kendall's tau {tau:+.2f} against retrained PSNR, 95 % "
            f"interval [{lo:+.2f}, {hi:+.2f}]")


def search_digest(run_dir: Path) -> str:
    """What a fidelity record describes: the search's run record and genotype, by content."""
    import hashlib

    h = hashlib.sha256()
    for name in ("run.json", "genotype.json"):
        path = run_dir / name
        h.update(path.read_bytes() if path.is_file() else b"")
    return h.hexdigest()


def write_fidelity(run_dir: Path, record: dict[str, Any]) -> None:
    """Store a ranking-fidelity measurement in the search's run folder (the report shows it), with the digest of
    the search it measured; strict JSON (NaN is refused)."""
    text = json.dumps({**record, "search_digest": search_digest(run_dir)}, indent=1, allow_nan=False)
    atomic_write_text(run_dir / FIDELITY, text)


def read_fidelity(run_dir: Path) -> dict[str, Any] | None:
    """The search folder's ranking-fidelity record (None when absent), validated as any input: strict JSON, the
    tau and its interval finite in [-1, 1], at least 3 cells, and measured on this search (its digest)."""
    path = run_dir / FIDELITY
    if not path.exists():
        return None

    def damaged(why: str) -> ConfigError:
        return ConfigError(f"{path}: {why}; it cannot be shown as this search's ranking fidelity (delete it, or "
                           "measure again with bench/ranking.py)")

    try:
        rec = read_strict_json(path)
    except ValueError as e:
        raise damaged(str(e)) from None
    if not isinstance(rec, dict):
        raise damaged("not a JSON object")

    def unit(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and -1 <= v <= 1

    if not unit(rec.get("tau")):
        raise damaged(f"'tau' is {rec.get('tau')!r}, expected a finite number in [-1, 1]")
    ci = rec.get("ci95")
    if not (isinstance(ci, list) and len(ci) == 2 and all(unit(v) for v in ci) and ci[0] <= ci[1]):
        raise damaged(f"'ci95' is {ci!r}, expected [low, high] in [-1, 1]")
    cells = rec.get("cells")
    if not isinstance(cells, int) or isinstance(cells, bool) or cells < 3:
        raise damaged(f"'cells' is {cells!r}, expected at least 3 retrained cells")
    for key in ("budget", "verdict"):
        if not isinstance(rec.get(key), str):
            raise damaged(f"'{key}' is missing or not text")
    if rec.get("search_digest") != search_digest(run_dir):
        raise damaged("it was measured on another search (its 'search_digest' is not this folder's run.json and "
                      "genotype.json)")
    return rec
