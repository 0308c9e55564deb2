"""`nas-recon ablate`: search and retrain per (space, node count), one report table (the paper's Table II).

Resumable like the demo: finished searches and retrainings are skipped on a rerun, interrupted ones continue.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from nas_recon.errors import ConfigError
from nas_recon.io import atomic_write_text
from nas_recon.lock import run_lock
from nas_recon.pipelines.demo import BUDGETS, DemoProgress, budget_recipe, data_stage, retrain_stage, search_stage
from nas_recon.space.spaces import LIMITS, load_space


def check_nodes(nodes: int) -> None:
    """Node counts the genotype format accepts."""
    if not 1 <= nodes <= LIMITS["nodes"]:
        raise ConfigError(f"--nodes: expected counts in [1, {LIMITS['nodes']}], got {nodes}")


def space_variant(space: str, nodes: int, folder: Path) -> Path:
    """A space file equal to SPACE but with NODES nodes, written under FOLDER (its name stays the space's)."""
    check_nodes(nodes)
    d = asdict(replace(load_space(space), nodes=nodes))
    lines = [f'name = "{d["name"]}"', "ops = [" + ", ".join(f'"{o}"' for o in d["ops"]) + "]"]
    lines += [f"{k} = {d[k]}" for k in ("nodes", "cells", "cascades", "channels")]
    path = folder / f"{Path(space).stem}-n{nodes}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def check_calibration(data: Path, budget: str) -> None:
    """Multi-coil data at the budget's image size: the 8x centre must hold ESPIRiT's calibration columns (ablate has
    no --size; the budget sets it), checked before anything is written."""
    import numpy as np

    from nas_recon.data.dataset import list_volumes
    from nas_recon.data.hdf5 import inspect_volume
    from nas_recon.defaults import ACCELERATIONS
    from nas_recon.physics.coils import MIN_CALIBRATION, acs_width
    from nas_recon.physics.masks import make_mask

    size = BUDGETS[budget].size
    if not inspect_volume(list_volumes(data / "train")[0]).coils:
        return
    for acc in ACCELERATIONS:
        width = acs_width(make_mask(size, acc, None, "random", np.random.default_rng(0)))
        if width < MIN_CALIBRATION:
            raise ConfigError(f"--data {data}: multi-coil data at the {budget} budget's {size} x {size} images: the "
                              f"{acc:g}x centre holds {width} columns, ESPIRiT needs {MIN_CALIBRATION}; ablate the "
                              "paper's spaces on single-coil data, or use a budget of larger images (--budget quick)")


def run_ablate(out: Path, data: Path | None = None, spaces: tuple[str, ...] = ("paper_a", "paper_b"),
               nodes: tuple[int, ...] = (2, 3, 4), budget: str = "quick", device: str = "auto", seed: int = 0,
               progress: DemoProgress | None = None) -> dict[str, Any]:
    """Search + retrain every (space, nodes) under the budget and write OUT/report; return the report object."""
    if budget not in BUDGETS:
        raise ConfigError(f"--budget: unknown '{budget}', expected {', '.join(BUDGETS)}")
    for n in nodes:  # everything checked before anything is written
        check_nodes(n)
    for space in spaces:
        load_space(space)
    if data is not None and not (Path(data) / "train").is_dir():
        raise ConfigError(f"--data: {data} has no train/ folder (expected train/ val/ test/)")
    if data is not None:
        check_calibration(Path(data), budget)
    with run_lock(out, "ablate"):
        return _ablate(out, data, spaces, nodes, budget, device, seed, progress or DemoProgress())


def _ablate(out: Path, data: Path | None, spaces: tuple[str, ...], nodes: tuple[int, ...], budget: str,
            device: str, seed: int, progress: DemoProgress) -> dict[str, Any]:
    """run_ablate inside the folder's lock."""
    from nas_recon.report.build import make_report

    b = BUDGETS[budget]
    settings = {"budget": budget, "seed": seed, "data": None if data is None else str(data),
                "spaces": list(spaces), "nodes": list(nodes)}
    state_file = out / "ablate.json"
    if state_file.is_file():
        try:
            saved = json.loads(state_file.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"{state_file}: unreadable ablation state ({e}); use another --out") from None
        if saved != settings:
            changed = next(k for k in settings if not isinstance(saved, dict) or saved.get(k) != settings[k])
            raise ConfigError(f"{out}: holds an ablation with another '{changed}' "
                              f"({saved.get(changed) if isinstance(saved, dict) else saved!r}); use another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(state_file, json.dumps(settings))
    variants = [(space, n, space_variant(space, n, out / "spaces")) for space in spaces for n in nodes]
    if data is None:
        data = data_stage(out / "data", b, seed, "mni152", progress)
    recipe = budget_recipe(b)
    run_dirs = []
    for space, n, path in variants:
        label = f"{Path(space).stem}-n{n}"
        search_dir = out / "search" / label
        genotype = search_stage(data, search_dir, b, str(path), seed, device, progress, f"searching {label}")
        run_dirs.append(search_dir)  # the report draws each searched cell and its alpha decisions
        run_dirs.append(retrain_stage(data, out / "runs" / label, label, recipe, b, seed, device, progress,
                                      genotype=str(genotype)))
    progress.stage("evaluating on test/ at 4x and 8x and writing the report")
    notes = [f"`nas-recon ablate --budget {budget}`: spaces {', '.join(spaces)} x nodes "
             f"{', '.join(map(str, nodes))}, one search (seed {seed}) and one retraining per setting, "
             f"recipe '{b.recipe}'; rows are labelled SPACE-nNODES"]
    return make_report(run_dirs, out / "report", Path(data) / "test", b.size, b.eval_crop, b.eval_max_slices,
                       device, seed, ("zero-filled",), notes=notes, progress=progress.stage)
