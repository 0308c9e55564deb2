"""`nas-recon demo`: demo data -> search -> random controls -> retrain everything -> evaluate -> report.

Two designs: `--select halving` (DARTS proposes in a macro space, successive halving over short retrainings decides,
everything compared at one FLOPs target: DC-CNN and MoDL at its width, random networks of its band) and the paper's
(`--space paper_a --select alpha`: a DARTS cell, random cells of its FLOPs, the fixed baselines).

Every stage is resumable: finished stages are skipped on a rerun, an interrupted one continues from its
last checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nas_recon.defaults import SIZE, SUPERVISIONS
from nas_recon.errors import ConfigError
from nas_recon.genotype import load_genotype
from nas_recon.io import atomic_write_text
from nas_recon.lock import run_lock
from nas_recon.search.selections import selection as selection_of
from nas_recon.train.recipe import load_recipe, with_overrides

BASELINES = ("dccnn-3", "modl-3", "rdn-3", "unet")
FAMILIES = ("dccnn-3", "modl-3")  # --select halving: the handcrafted families set to the FLOPs target's width
MULTICOIL_SIZE = 160  # the smallest demo size a multi-coil demo runs at (8x calibrates on 6 columns)
DEMO_SPACE = "macro_a"  # the macro space (cascades, cells, width, sharing, DC kind); the paper's: --space paper_a
DEMO_SELECT = "halving"  # DARTS proposes, short retrainings decide; the paper's rule: --select alpha
DEMO_TARGET = "like:dccnn-3"  # --select halving's FLOPs target
SSDU_ACCELERATION = 4.0  # demo --supervision ssdu: the undersampling of train/ and val/


@dataclass
class Budget:
    """How much work the demo does."""

    name: str
    size: int = SIZE
    slices: int = 60
    search_epochs: int = 8
    search_patience: int = 3
    search_crop: int = 48
    search_batch: int = 4
    search_max_slices: int = 12
    search_repeats: int = 2
    search_arch_lr: float = 3e-3
    recipe: str = "quick"
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    random_cells: int = 3
    eval_crop: int | None = None
    eval_max_slices: int | None = None
    baselines: tuple[str, ...] = BASELINES
    tv: bool = True
    coils: int = 0  # 0: single-coil demo data; N: N simulated coils (and E2E-VarNet among the baselines)
    pool: int = 6  # --select halving: the selection's candidates, rungs, finalists and their seeds
    rungs: int = 1
    finalists: int = 2
    final_seeds: int = 2


BUDGETS = {
    "quick": Budget("quick"),
    # about 3x the quick budget's optimiser steps (search and retraining), for 2 CPU cores in under an hour
    "standard": Budget("standard", search_epochs=12, search_patience=4, search_max_slices=24, search_repeats=2,
                       recipe="standard", random_cells=5, pool=18, rungs=2, finalists=3),
    # the paper's 80 retraining epochs (10x quick: 1440 steps per model) and 50 search epochs, on the demo data
    "long": Budget("long", search_epochs=50, search_patience=10, search_max_slices=24, search_repeats=2,
                   recipe="long", random_cells=5, pool=18, rungs=2, finalists=3),
    "full": Budget("full", search_epochs=50, search_patience=10, search_crop=96, search_max_slices=None,
                   search_repeats=1, search_arch_lr=3e-4,
                   recipe="paper", random_cells=5, pool=18, rungs=2, finalists=3,
                   recipe_overrides={"crop": 128, "unet_crop": 320, "val_crop": 0, "val_max_slices": 0}),
    # CI's integration test: tiny everything, same code path
    "tiny": Budget("tiny", size=64, slices=20, search_epochs=1, search_patience=1, search_crop=32, search_batch=2,
                   search_max_slices=4, search_repeats=1, recipe="quick",
                   recipe_overrides={"epochs": 1, "crop": 32, "unet_crop": 0, "val_crop": 0, "val_max_slices": 2,
                                     "max_slices": 8, "repeats": 1},
                   random_cells=2, eval_max_slices=2, baselines=("dccnn-3", "unet"), tv=False, pool=3, rungs=1,
                   finalists=1, final_seeds=1),
}


class DemoProgress:
    """Hooks the CLI implements: stage messages plus the search/retrain progress objects."""

    def stage(self, text: str) -> None: ...

    def search_progress(self): ...

    def selection_progress(self): ...

    def retrain_progress(self, label: str): ...


def run_demo(out: Path, budget: str = "quick", device: str = "auto", seed: int = 0,
             progress: DemoProgress | None = None, source: str = "mni152", cell_bias: bool = False,
             space: str = DEMO_SPACE, coils: int = 0, select: str = DEMO_SELECT, flops_target: str = DEMO_TARGET,
             flops_band: float = 0.05, baselines: tuple[str, ...] | None = None,
             supervision: str = "full") -> dict[str, Any]:
    """Run (or continue) the whole demo under OUT; return the report object (`cell_bias`: search --cell-bias;
    `space`: the search space, a shipped name or a TOML path; `coils`: a multi-coil demo of that many coils, the
    small E2E-VarNet added to the baselines; `select`: halving (at `flops_target`) or the paper's alpha/perturb;
    `baselines`: registered models instead of the budget's handcrafted baselines; `supervision` ssdu: the search
    and its retrainings on undersampled train/ and val/ alone, beside their supervised twins, in OUT/ssdu)."""
    from nas_recon.data.demo import check_coils
    from nas_recon.space import load_space

    if budget not in BUDGETS:
        raise ConfigError(f"--budget: unknown '{budget}', expected {', '.join(BUDGETS)}")
    retrains = selection_of(select).retrains
    if supervision not in SUPERVISIONS:
        raise ConfigError(f"--supervision: unknown '{supervision}', expected {' or '.join(SUPERVISIONS)}")
    if supervision == "ssdu" and not retrains:
        raise ConfigError(f"--supervision ssdu: the self-supervised demo runs --select halving, not --select {select}")
    if supervision == "ssdu" and baselines is not None:
        raise ConfigError("--baselines: the self-supervised demo (--supervision ssdu) trains DC-CNN-3 beside the "
                          "searched network; run the supervised demo for other baselines")
    check_coils(coils, "--coils")
    sp = load_space(space)  # a bad --space is refused before anything is written
    b = BUDGETS[budget] if baselines is None else replace(BUDGETS[budget], baselines=check_baselines(baselines))
    band = None
    if retrains:
        from nas_recon.search.budget import parse_flops_target
        from nas_recon.search.derive import derive_in_band, edges

        band = parse_flops_target(flops_target, flops_band)
        derive_in_band({e: {o: 1.0 for o in sp.ops} for e in edges(sp.nodes, sp.backbone)}, sp, band)
    elif sp.is_macro:
        raise ConfigError(f"--space {space}: a macro space's networks are chosen by --select halving (its choices "
                          "of cascades, cells and width are not in the DARTS supernet)")
    if coils:  # at least 160 x 160: the 8x centre (4 %) must hold ESPIRiT's 6 calibration columns
        b = replace(b, coils=coils, baselines=(*b.baselines, "varnet-small"), size=max(b.size, MULTICOIL_SIZE))
    with run_lock(out, "demo"):
        return _demo(out, b, device, seed, progress or DemoProgress(), source, cell_bias, space, select, band,
                     supervision)


def check_baselines(names: tuple[str, ...]) -> tuple[str, ...]:
    """--baselines: registered models (the searched network is the demo's own), each once."""
    from nas_recon.models.registry import parse_name

    for name in names:
        if name == "searched":
            raise ConfigError("--baselines: 'searched' is the demo's own network, not a baseline")
        parse_name(name)  # an unknown name: one line listing the registered ones
    return tuple(dict.fromkeys(names))


def check_state(out: Path, want: dict[str, Any]) -> None:
    """Refuse a demo folder that holds a demo of other settings; record these (a demo.json of an earlier version
    lacks the selection keys: it ran the paper's)."""
    state_file = out / "demo.json"
    state = _read_state(state_file)
    old = {"cell_bias": False, "space": "paper_a", "coils": 0, "select": "alpha", "flops_target": None}
    held = {k: state.get(k, old.get(k)) for k in want}
    if state and held != want:
        flags = [" --cell-bias" if held.get("cell_bias") else "",
                 f" --coils {held['coils']}" if held.get("coils") else "",
                 f" --select {held.get('select')}",
                 f" --flops-target {held['flops_target']['source']}" if held.get("flops_target") else ""]
        raise ConfigError(f"{out}: holds a demo with budget {held['budget']!r} seed {held['seed']!r} space "
                          f"{held['space']!r}{''.join(flags)}; use another --out")
    atomic_write_text(state_file, json.dumps(want))


def _demo(out: Path, b: Budget, device: str, seed: int, progress: DemoProgress, source: str,
          cell_bias: bool, space: str, select: str = "alpha", band: Any = None, supervision: str = "full"
          ) -> dict[str, Any]:
    """run_demo inside the demo folder's lock."""
    check_state(out, {"budget": b.name, "seed": seed, "cell_bias": cell_bias, "space": space, "coils": b.coils,
                      "select": select, "flops_target": band.to_dict() if band is not None else None})
    data = data_stage(out / "data", b, seed, source, progress)
    if supervision == "ssdu":
        return ssdu_demo(out, data, b, device, seed, progress, cell_bias, space, band)
    if selection_of(select).retrains:
        return halving_demo(out, data, b, device, seed, progress, cell_bias, space, band)
    return paper_demo(out, data, b, device, seed, progress, cell_bias, space, select)


def paper_demo(out: Path, data: Path, b: Budget, device: str, seed: int, progress: DemoProgress, cell_bias: bool,
               space: str, select: str) -> dict[str, Any]:
    """The paper's demo: a DARTS cell, random cells of its FLOPs, the fixed baselines."""
    from nas_recon.report.build import make_report
    from nas_recon.select.sample import sample_genotypes, write_samples
    from nas_recon.space import load_space

    search_dir = out / "search"
    genotype_file = search_stage(data, search_dir, b, space, seed, device, progress,
                                 f"searching a cell (DARTS, space {space}"
                                 + (", --cell-bias)" if cell_bias else ")"), cell_bias=cell_bias, select=select)
    searched = load_genotype(genotype_file)

    random_dir = out / "random"
    if len(list(random_dir.glob("random_*.json"))) < b.random_cells:
        progress.stage(f"sampling {b.random_cells} random cells of similar FLOPs (+-15 %)")
        gs = sample_genotypes(load_space(space), b.random_cells, seed, like=searched, tolerance=0.15)
        write_samples(gs, random_dir)
    random_files = sorted(random_dir.glob("random_*.json"))[: b.random_cells]

    recipe = budget_recipe(b)
    jobs: list[tuple[str, str | None, str | None]] = [("searched", None, str(genotype_file))]
    jobs += [(name, name, None) for name in b.baselines]
    jobs += [(f.stem, None, str(f)) for f in random_files]
    run_dirs = [search_dir]
    for label, model, gfile in jobs:
        run_dirs.append(retrain_stage(data, out / "runs" / label, label, recipe, b, seed, device, progress,
                                      model=model, genotype=gfile))

    progress.stage("evaluating on test/ at 4x and 8x and writing the report")
    notes = [*data_notes(b),
             f"search: space {space}, `--select {select}`, {b.search_epochs} epochs max (patience "
             f"{b.search_patience}, early stop only when decided), {b.search_crop} x {b.search_crop} crops, "
             f"batch {b.search_batch}, at most "
             f"{b.search_max_slices} slices per split drawn {b.search_repeats}x an epoch, arch lr {b.search_arch_lr}",
             f"retraining: recipe '{b.recipe}' with {b.recipe_overrides or 'no overrides'}: "
             f"{recipe.epochs} epochs, {recipe.crop or 'full'} crops, batch {recipe.batch_size}, loss {recipe.loss}",
             f"random controls: {b.random_cells} cells uniform over derivable cells within 15 % of the searched "
             "cell's FLOPs",
             *(["--cell-bias (outside SPEC): every conv of the searched and random cells has a bias"]
               if cell_bias else []),
             f"evaluation: every test slice at 4x and 8x"
             f"{'' if b.eval_max_slices is None else f' (at most {b.eval_max_slices} slices)'}"]
    classical = ("zero-filled", "tv") if b.tv else ("zero-filled",)
    return make_report(run_dirs, out / "report", data / "test", b.size, b.eval_crop, b.eval_max_slices, device,
                       seed, classical, notes=notes, progress=progress.stage, maps_dir=maps_dir(data, b))


def halving_demo(out: Path, data: Path, b: Budget, device: str, seed: int, progress: DemoProgress, cell_bias: bool,
                 space: str, band: Any) -> dict[str, Any]:
    """The search that pays: DARTS proposes in the space, successive halving decides inside the FLOPs band; the
    selected network is retrained beside DC-CNN and MoDL at the band's width, the fixed baselines below the band
    and random networks of the band, all under the budget's recipe."""
    from nas_recon.report.build import make_report
    from nas_recon.search.budget import model_flops, width_for
    from nas_recon.select.halving import SELECTION, summary
    from nas_recon.select.sample import sample_genotypes, write_samples
    from nas_recon.space import load_space

    recipe = budget_recipe(b)
    search_dir = out / "search"
    genotype_file = halving_stage(data, search_dir, b, space, seed, device, progress, band, cell_bias,
                                  write_recipe(recipe, out / "recipe.toml"))
    random_dir = out / "random"
    if len(list(random_dir.glob("random_*.json"))) < b.random_cells:
        progress.stage(f"sampling {b.random_cells} random networks of the band")
        write_samples(sample_genotypes(load_space(space), b.random_cells, seed, band=band), random_dir)
    random_files = sorted(random_dir.glob("random_*.json"))[: b.random_cells]
    jobs: list[tuple[str, str | None, str | None, int | None]] = [("searched", None, str(genotype_file), None)]
    for name in FAMILIES:  # their published structure, the width set to the target
        w = width_for(name, band)
        jobs.append((name if w == 32 else f"{name}-w{w}", name, None, w))
    below = [n for n in b.baselines if n not in FAMILIES and model_flops(n, 32) <= band.hi]
    jobs += [(n, n, None, None) for n in below]
    jobs += [(f.stem, None, str(f), None) for f in random_files]
    run_dirs = [search_dir]
    for label, model, gfile, width in jobs:
        run_dirs.append(retrain_stage(data, out / "runs" / label, label, recipe, b, seed, device, progress,
                                      model=model, genotype=gfile, channels=width if width != 32 else None))
    progress.stage("evaluating on test/ at 4x and 8x and writing the report")
    sel = summary(search_dir / SELECTION)
    above = [n for n in b.baselines if n not in FAMILIES and n not in below]
    notes = [*data_notes(b),
             f"search: space {space} ({load_space(space).backbone} backbone), `--select halving` at "
             f"{band.describe()}: a DARTS stage of {b.search_epochs} epochs proposes; a pool of {b.pool} candidates "
             f"(the DARTS cell, the space's handcrafted points, cells drawn from its op weights, macro and random "
             f"draws) is retrained on train/ and scored on val/ ({rungs_text(sel['plan'])}); the best "
             f"{sel['plan']['finalists']} are "
             f"retrained with {len(sel['plan']['seeds'])} seed(s); cost {sel['cost']['retrainings']} "
             "retraining-equivalents",
             f"selected: {sel['winner']['network']} ({sel['winner']['origin']})",
             f"retraining: recipe '{b.recipe}' with {b.recipe_overrides or 'no overrides'}: "
             f"{recipe.epochs} epochs, {recipe.crop or 'full'} crops, batch {recipe.batch_size}, loss {recipe.loss}",
             f"handcrafted: {', '.join(FAMILIES)} in their published structure at the width of the target"
             + (f"; {', '.join(below)} (below the target)" if below else "")
             + (f"; not run, above the target: {', '.join(above)}" if above else ""),
             f"random controls: {b.random_cells} networks drawn uniformly (cell, cascades, cells, sharing, DC kind) "
             "inside the band, width set to meet it",
             f"evaluation: every test slice at 4x and 8x"
             f"{'' if b.eval_max_slices is None else f' (at most {b.eval_max_slices} slices)'}"]
    classical = ("zero-filled", "tv") if b.tv else ("zero-filled",)
    return make_report(run_dirs, out / "report", data / "test", b.size, b.eval_crop, b.eval_max_slices, device,
                       seed, classical, notes=notes, progress=progress.stage, maps_dir=maps_dir(data, b))


def halving_stage(data: Path, search_dir: Path, b: Budget, space: str, seed: int, device: str,
                  progress: DemoProgress, band: Any, cell_bias: bool, trials_recipe: Path, **options: Any) -> Path:
    """The search that pays under the budget (OPTIONS: further SearchConfig fields, e.g. supervision)."""
    how = " under SSDU" if options.get("supervision") == "ssdu" else ""
    return search_stage(data, search_dir, b, space, seed, device, progress,
                        f"searching{how} (space {space}: DARTS proposes, successive halving over {b.pool} candidates "
                        f"decides, FLOPs {band.describe()})",
                        cell_bias=cell_bias, select="halving", flops_target=band.source, flops_band=band.band,
                        recipe=str(trials_recipe), pool=b.pool, rungs=b.rungs, finalists=b.finalists,
                        final_seeds=b.final_seeds, **options)


def ssdu_demo(out: Path, data: Path, b: Budget, device: str, seed: int, progress: DemoProgress, cell_bias: bool,
              space: str, band: Any) -> dict[str, Any]:
    """The search that pays without fully sampled data: train/ and val/ undersampled at 4x (one seeded mask per
    volume, no references), the search, its selection and the retrainings under SSDU; DC-CNN-3 under SSDU too;
    both beside their supervised twins (and the supervised demo's own searched network, where present), on the
    same fully sampled test/."""
    from nas_recon.data.undersample import undersample_folder
    from nas_recon.report.build import make_report
    from nas_recon.select.halving import SELECTION, summary

    under = out / "data-ssdu"
    if not (under / "manifest.json").is_file():
        progress.stage("undersampling train/ and val/ at 4x (one seeded mask per volume, references dropped)")
        undersample_folder(data, under, SSDU_ACCELERATION, "random", seed)
    root = out / "ssdu"
    recipe = budget_recipe(b)
    ssdu = with_overrides(recipe, {"supervision": "ssdu"}, "--supervision ssdu")
    root.mkdir(parents=True, exist_ok=True)
    genotype_file = halving_stage(under, root / "search", b, space, seed, device, progress, band, cell_bias,
                                  write_recipe(recipe, root / "recipe.toml"), supervision="ssdu")
    runs = [root / "search"]
    for label, kw in (("searched", {"genotype": str(genotype_file)}), ("dccnn-3", {"model": "dccnn-3"})):
        runs.append(retrain_stage(under, root / "runs" / f"{label}-ssdu", f"{label} (SSDU)", ssdu, b, seed, device,
                                  progress, **kw))
    runs.append(retrain_stage(data, root / "runs" / "searched-full", "searched (SSDU's network, supervised)", recipe,
                              b, seed, device, progress, genotype=str(genotype_file)))
    runs.append(retrain_stage(data, out / "runs" / "dccnn-3", "dccnn-3", recipe, b, seed, device, progress,
                              model="dccnn-3"))  # the supervised demo's, when it ran here
    reused = out / "runs" / "searched"
    if (reused / "best.pt").is_file():
        runs.append(reused)
    progress.stage("evaluating on test/ at 4x and 8x and writing the report")
    sel = summary(root / "search" / SELECTION)
    notes = [*data_notes(b),
             f"`--supervision ssdu`: train/ and val/ undersampled at {SSDU_ACCELERATION:g}x (`nas-recon data "
             "undersample`: one seeded random mask per volume, no references); test/ keeps its references",
             f"SSDU: each slice's acquired columns split into Theta (input, data consistency) and Lambda (rho "
             f"{ssdu.ssdu_rho:g}, {ssdu.ssdu_selection} outside the centre), the loss SSDU's normalised l1 + l2 on "
             "Lambda's k-space; training crops take rows only (every column); best.pt and the selection's scores "
             "by the held-out loss of val/",
             f"search under SSDU: space {space}, `--select halving` at {band.describe()} "
             f"({rungs_text(sel['plan'])}); selected: {sel['winner']['network']} ({sel['winner']['origin']})",
             f"retraining: recipe '{b.recipe}' with {b.recipe_overrides or 'no overrides'}: {recipe.epochs} epochs; "
             "`(SSDU)` rows trained on the undersampled files alone, the others on the fully sampled references"
             + ("; `searched` is the supervised demo's own network" if reused in runs else ""),
             f"evaluation: every test slice at 4x and 8x"
             f"{'' if b.eval_max_slices is None else f' (at most {b.eval_max_slices} slices)'}"]
    return make_report(runs, root / "report", data / "test", b.size, b.eval_crop, b.eval_max_slices, device, seed,
                       ("zero-filled",), notes=notes, progress=progress.stage, mixed_data=True,
                       maps_dir=maps_dir(data, b))


def rungs_text(plan: dict[str, Any]) -> str:
    """How the plan trained its pool, in words."""
    epochs = plan["epochs"]
    if len(epochs) == 1:
        return f"each for {epochs[0]} epochs"
    return f"successive halving: rungs of {', '.join(map(str, epochs))} epochs, keeping 1/{plan['eta']}"


def write_recipe(recipe: Any, path: Path) -> Path:
    """The budget's recipe (its overrides applied) as a TOML file the selection's trials train under."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    text = "".join(f"{k} = {value(v)}\n" for k, v in recipe.to_dict().items())
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
    return path


def data_notes(b: Budget) -> list[str]:
    """The report's lines on the demo data."""
    coil_note = (f", {b.coils} simulated coils (birdcage maps, correlated noise); ESPIRiT maps from the "
                 "undersampled centre; targets and metrics on the RSS" if b.coils else "")
    return [f"`nas-recon demo --budget {b.name}{f' --coils {b.coils}' if b.coils else ''}` on the offline demo "
            f"data ({b.slices} slices of the MNI152 template at {b.size} x {b.size}, train/val/test by slab"
            f"{coil_note})",
            *(["varnet-small: E2E-VarNet in a smaller configuration for the CPU demo (4 cascades, 8 channels, "
               "sensitivity U-Net 4 channels, 3 pools; fastMRI's default is `varnet`)"] if b.coils else [])]


def data_stage(data: Path, b: Budget, seed: int, source: str, progress: DemoProgress) -> Path:
    """Build the offline demo data in DATA unless a finished build (its manifest) is there."""
    from nas_recon.data.demo import build_demo

    if not (data / "manifest.json").is_file():
        progress.stage("building the offline demo dataset")
        build_demo(data, source, b.size, seed, b.slices, force=True, coils=b.coils)
    return data


def maps_dir(data: Path, b: Budget) -> Path | None:
    """Multi-coil: one ESPIRiT cache beside the demo data, shared by every stage (None single-coil)."""
    return data.parent / "maps" if b.coils else None


def search_stage(data: Path, run_dir: Path, b: Budget, space: str, seed: int, device: str, progress: DemoProgress,
                 title: str, **options: Any) -> Path:
    """Search under the budget unless RUN_DIR already holds a genotype (an interrupted search resumes).

    TITLE is announced when a search runs; OPTIONS are further SearchConfig fields (strategy, cost, ...).
    """
    from nas_recon.search.run import SearchConfig, run_search

    if not (run_dir / "genotype.json").is_file():
        progress.stage(title)
        cfg = SearchConfig(data=str(data), out=str(run_dir), space=space, epochs=b.search_epochs,
                           patience=b.search_patience, crop=b.search_crop, size=b.size, batch_size=b.search_batch,
                           max_slices=b.search_max_slices, seed=seed, device=device, repeats=b.search_repeats,
                           arch_lr=b.search_arch_lr, maps_dir=str(maps_dir(data, b)) if b.coils else None,
                           **options)
        resume = (run_dir / "run.json").exists()
        if selection_of(cfg.select).retrains:
            from nas_recon.select.halving import run_halving_search

            run_halving_search(cfg, resume, progress.search_progress(), progress.selection_progress())
        else:
            run_search(cfg, resume=resume, progress=progress.search_progress())
    return run_dir / "genotype.json"


def budget_recipe(b: Budget):
    """The budget's retraining recipe with its overrides."""
    return with_overrides(load_recipe(b.recipe), b.recipe_overrides, f"budget '{b.name}'")


def retrain_stage(data: Path, run_dir: Path, label: str, recipe, b: Budget, seed: int, device: str,
                  progress: DemoProgress, model: str | None = None, genotype: str | None = None,
                  channels: int | None = None) -> Path:
    """Retrain unless RUN_DIR holds all the recipe's epochs (an interrupted run resumes); return RUN_DIR."""
    from nas_recon.train.retrain import RetrainConfig, run_retrain

    if (run_dir / "last.pt").is_file() and _epochs_done(run_dir) >= recipe.epochs:
        return run_dir
    progress.stage(f"retraining {label}")
    cfg = RetrainConfig(str(data), str(run_dir), recipe, model=model, genotype=genotype, seed=seed, device=device,
                        size=b.size, maps_dir=str(maps_dir(data, b)) if b.coils else None, channels=channels)
    run_retrain(cfg, resume=(run_dir / "run.json").exists(), progress=progress.retrain_progress(label))
    return run_dir


def _read_state(path: Path) -> dict[str, Any]:
    """The demo's state file ({} when absent); a clear error when it is not a JSON object."""
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable demo state ({e}); use another --out") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: demo state is not a JSON object; use another --out")
    return state


def _epochs_done(run_dir: Path) -> int:
    from nas_recon.engine.checkpoint import read_checkpoint

    try:
        return int(read_checkpoint(run_dir / "last.pt")["epoch"])
    except ConfigError:
        return 0

