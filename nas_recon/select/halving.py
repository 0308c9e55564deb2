"""`search --select halving`: DARTS proposes, short retrainings decide.

After the DARTS stage (its best-scored cell inside the FLOPs band is written as darts_genotype.json, with the
alphas), a pool of candidates inside the band (nas_recon.select.pool) is retrained by successive halving on the
training split and scored on the validation split (nas_recon.select.plan, .trial); the study lives in an Optuna
storage (nas_recon.select.study: SQLite in RUN/selection by default, or --storage shared by several processes or
machines). The winner is written as RUN/genotype.json; RUN/selection holds every trial, rung and score.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nas_recon import __version__
from nas_recon.errors import ConfigError, NasReconError
from nas_recon.genotype import Genotype, load_genotype, save_genotype
from nas_recon.io import atomic_write_text, write_csv
from nas_recon.search.budget import FlopsBand, genotype_flops, parse_flops_target
from nas_recon.search.config import PROPOSAL
from nas_recon.search.derive import EdgeWeights
from nas_recon.select.plan import DIVERGED, Job, Plan, make_plan, rank_correlation
from nas_recon.select.pool import Candidate, build_pool
from nas_recon.select.trial import SSDU_SCORE, TrialSetup, run_job, score_text, supervision_of, trial_recipe
from nas_recon.space.spaces import SearchSpace, load_space
from nas_recon.train.recipe import load_recipe
from nas_recon.train.retrain import RetrainProgress

SELECTION = "selection"  # the selection's folder inside the search run


class SelectionProgress:
    """Hooks the CLI implements (library code never prints)."""

    def start(self, plan: Plan, pool: list[Candidate]) -> None: ...

    def job_start(self, job: Job, candidate: Candidate) -> None: ...

    def retrain_progress(self) -> RetrainProgress:
        return RetrainProgress()

    def job_end(self, job: Job, score: float, text: str = "") -> None: ...

    def waiting(self) -> None: ...


@dataclass
class Selection:
    """Everything one worker of a selection needs."""

    run_dir: Path
    space: SearchSpace
    band: FlopsBand
    pool: list[Candidate]
    plan: Plan
    setup: TrialSetup
    settings: dict[str, Any]
    storage: str

    @property
    def sel_dir(self) -> Path:
        return self.run_dir / SELECTION

    @property
    def study_name(self) -> str:
        digest = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:16]
        return f"nas-recon-selection-{digest}"


def weights_from_json(alphas: dict[str, dict[str, float]]) -> EdgeWeights:
    """Inverse of derive.weights_to_json ({'node{i}<-{j}': {op: weight}})."""
    out: EdgeWeights = {}
    for key, w in alphas.items():
        node, src = key.removeprefix("node").split("<-")
        out[(int(node), int(src))] = {o: float(v) for o, v in w.items()}
    return out


def search_space(cfg: Any) -> SearchSpace:
    """The search's space, with --cell-bias applied."""
    space = load_space(cfg.space)
    return replace(space, bias=True) if cfg.cell_bias else space


def prepare(cfg: Any, run_dir: Path, device: str | None = None) -> Selection:
    """The selection of a search whose DARTS stage has finished: its pool (deterministic: every worker builds the
    same), plan, trial setup and settings; writes the pool's genotypes (identical from every worker)."""
    proposal_file = run_dir / PROPOSAL
    if not proposal_file.is_file():
        raise ConfigError(f"{run_dir}: the DARTS stage of this search has not finished (no {PROPOSAL}); start it with "
                          "nas-recon search --select halving")
    proposal = load_genotype(proposal_file)
    space = search_space(cfg)
    band = parse_flops_target(cfg.flops_target, cfg.flops_band)
    alphas = proposal.extra.get("alphas")
    weights = weights_from_json(alphas) if isinstance(alphas, dict) else None
    recipe = trial_recipe(load_recipe(cfg.recipe), cfg.score_slices, supervision_of(cfg))
    plan = make_plan(cfg.pool, recipe.epochs, cfg.rungs, cfg.eta, tuple(cfg.seed + k for k in range(cfg.final_seeds)),
                     cfg.finalists)
    pool = build_pool(space, band, cfg.pool, cfg.seed, proposal, weights)
    sel = run_dir / SELECTION
    meta = json.loads((run_dir / "run.json").read_text())
    record = meta.get("data_record", {})
    maps = (cfg.maps_dir or str(run_dir / "maps")) if meta.get("coils") else None  # one ESPIRiT cache for all trials
    setup = TrialSetup(str(cfg.data), sel, recipe, cfg.size, device or cfg.device, cfg.precision, maps,
                       cfg.coil_estimator)
    settings = {"space": space.name, "bias": space.bias, "band": band.to_dict(), "plan": plan.to_dict(),
                "recipe": recipe.to_dict(), "seed": cfg.seed, "size": cfg.size, "precision": cfg.precision,
                "data": record.get("digest"), "pool": [c.genotype.to_dict() for c in pool],
                "version": __version__}
    (sel / "pool").mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(pool):
        target = setup.genotype_file(i)
        g = replace(c.genotype, extra={"selection_candidate": {"index": i, "origin": c.origin, "note": c.note,
                                                               "flops": genotype_flops(c.genotype)}})
        if not target.is_file() or load_genotype(target) != g:
            save_genotype(g, target)
    storage = cfg.storage or f"sqlite:///{(sel / 'study.db').resolve()}"
    return Selection(run_dir, space, band, pool, plan, setup, settings, storage)


def check_workers(workers: int, device: str) -> None:
    """--workers: at most one per GPU, or one per CPU core."""
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        have, what = torch.cuda.device_count(), "GPUs"
    else:
        have, what = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, \
            "CPU cores"
    if workers > have:
        raise ConfigError(f"--workers {workers}: this machine has {have} {what}; one worker per GPU (on a CPU, per "
                          "group of cores) at most")


def worker_device(device: str, index: int) -> str:
    """Worker `index`'s device: its own GPU (cuda:index) when on CUDA, else the CPU."""
    import torch

    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return "cpu"
    return f"cuda:{index % max(1, torch.cuda.device_count())}"


def worker_threads(workers: int) -> int:
    """CPU threads per worker: the cores shared evenly."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // workers)


def run_selection(cfg: Any, run_dir: Path, progress: SelectionProgress | None = None, workers: int = 1,
                  index: int = 0, tag: str | None = None) -> Genotype | None:
    """Work on the selection of `run_dir` until every job is done (spawning `workers - 1` more local workers from
    worker 0), then write the records and the winner (RUN/genotype.json). Returns the winner (None: every
    finalist diverged, nothing is written)."""
    import torch

    from nas_recon.select.study import open_storage, open_study, work

    progress = progress or SelectionProgress()
    device = worker_device(cfg.device, index)
    threads = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(worker_threads(workers))
    children: list[Any] = []
    try:
        sel = prepare(cfg, run_dir, device)
        study = open_study(open_storage(sel.storage), sel.study_name, sel.settings)
        tag = tag or f"{socket.gethostname()}-{os.getpid()}"  # this machine's group of local workers
        ready = [sel.sel_dir / f"worker-{tag}-{k}.ready" for k in range(workers)]
        if index == 0:
            children = [spawn_worker(run_dir, k, workers, tag) for k in range(1, workers)]
            wait_for(children, ready[1:])  # every local worker starts on the first rung together
        else:
            atomic_write_text(ready[index], f"{os.getpid()}\n")
        progress.start(sel.plan, sel.pool)

        def job(j: Job) -> float:
            progress.job_start(j, sel.pool[j.candidate])
            score = run_job(sel.setup, j, progress.retrain_progress())
            progress.job_end(j, score, score_text(score, sel.setup.recipe.supervision == "ssdu"))
            return score

        scores = work(study, sel.plan, job, on_idle=progress.waiting)
        for child in children:
            child.join()
        failed = [(k, c.exitcode) for k, c in enumerate(children, start=1) if c.exitcode]
        for r in ready[1:] if index == 0 else []:
            r.unlink(missing_ok=True)
        if failed:
            k, code = failed[0]
            err = sel.sel_dir / f"worker-{tag}-{k}.err"
            why = err.read_text().strip() if err.is_file() else f"exit status {code}"
            raise NasReconError(f"selection: worker {k} stopped ({why}); the study is complete, rerun to write it")
        return finish(sel, study, scores)
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join()
        torch.set_num_threads(threads)


def wait_for(children: list[Any], ready: list[Path], timeout_s: float = 300.0) -> None:
    """Until every spawned worker has joined the study (its ready file), died, or the timeout passed."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and any(c.is_alive() and not r.is_file() for c, r in zip(children, ready,
                                                                                          strict=True)):
        time.sleep(0.2)


def spawn_worker(run_dir: Path, index: int, workers: int, tag: str) -> Any:
    """Start local worker `index` (a fresh process: it reads the run's settings, builds the same pool and joins the
    study)."""
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=worker_main, args=(str(run_dir), index, workers, tag), daemon=False)
    p.start()
    return p


def worker_main(run_dir: str, index: int, workers: int, tag: str) -> None:
    """A spawned worker: silent; a user error is left in RUN/selection/worker-TAG-INDEX.err and the exit status
    is 2."""
    import sys

    from nas_recon.runtime import configure

    configure()
    err = Path(run_dir) / SELECTION / f"worker-{tag}-{index}.err"
    try:
        cfg = config_of(Path(run_dir))
        run_selection(cfg, Path(run_dir), workers=workers, index=index, tag=tag)
        err.unlink(missing_ok=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except NasReconError as e:
        atomic_write_text(err, f"{e}\n")
        sys.exit(2)


def config_of(run_dir: Path) -> Any:
    """The SearchConfig a search run recorded in run.json."""
    from nas_recon.outputs import read_run_record
    from nas_recon.search.config import SearchConfig

    meta = read_run_record(run_dir / "run.json", "search")
    saved = meta.get("config")
    if not isinstance(saved, dict):
        raise ConfigError(f"{run_dir / 'run.json'}: unreadable run record (no 'config' object)")
    known = {f for f in SearchConfig.__dataclass_fields__}
    return SearchConfig(**{k: v for k, v in saved.items() if k in known})


def finish(sel: Selection, study: Any, scores: dict[tuple[int, int, int], float]) -> Genotype | None:
    """Write trials.csv, candidates.csv, rungs.csv, selection.json and the winner's genotype.json."""
    from nas_recon.select.study import redact, trial_rows

    plan, pool = sel.plan, sel.pool
    rows = trial_rows(study)
    write_csv(sel.sel_dir / "trials.csv", rows)
    seed0 = plan.seeds[0]
    alive, rungs = list(range(plan.pool)), []
    for r in range(plan.rungs):
        nxt = plan.promote(alive, r, scores)  # after the last rung: the finalists
        tau = None
        if nxt and r < plan.rungs - 1:
            pairs = [(scores[(c, r, seed0)], scores[(c, r + 1, seed0)]) for c in nxt
                     if scores[(c, r + 1, seed0)] != DIVERGED]
            tau = rank_correlation([a for a, _ in pairs], [b for _, b in pairs])
        rungs.append({"rung": r, "epochs": plan.epochs[r], "candidates": len(alive), "promoted": len(nxt),
                      "tau_with_next": "" if tau is None else round(tau, 4),
                      "best_score": max((scores[(c, r, seed0)] for c in alive
                                         if scores[(c, r, seed0)] != DIVERGED), default="")})
        alive = nxt
    write_csv(sel.sel_dir / "rungs.csv", rungs)
    cands = []
    for i, c in enumerate(pool):
        row: dict[str, Any] = {"candidate": i, "origin": c.origin, "network": c.genotype.summary(),
                               "gflops": round(genotype_flops(c.genotype) / 1e9, 3)}
        for r in range(plan.rungs):
            v = scores.get((i, r, seed0))
            row[f"rung{r}"] = "" if v is None else ("diverged" if v == DIVERGED else round(v, 4))
        for s in plan.seeds[1:]:
            v = scores.get((i, plan.rungs - 1, s))
            row[f"seed{s}"] = "" if v is None else ("diverged" if v == DIVERGED else round(v, 4))
        cands.append(row)
    write_csv(sel.sel_dir / "candidates.csv", cands)
    winner = plan.winner(scores)
    seconds = sum(float(r["seconds"]) for r in rows if r["seconds"] not in ("", None))
    trained = trained_epochs(plan, scores)
    record = {
        "format": "nas-recon-selection", "version": 1, "package_version": __version__,
        "select": "halving", "band": sel.band.to_dict(), "plan": plan.to_dict(), "study": sel.study_name,
        "storage": redact(sel.storage), "recipe": sel.setup.recipe.to_dict(),
        "score": SSDU_SCORE if sel.setup.recipe.supervision == "ssdu" else "val PSNR (dB)",
        "pool": [{"candidate": i, **c.to_dict(), "gflops": round(genotype_flops(c.genotype) / 1e9, 3)}
                 for i, c in enumerate(pool)],
        "rungs": rungs, "finalists": plan.finalists_of(scores),
        "cost": {"epochs": trained, "retrainings": round(trained / plan.epochs[-1], 2),
                 "worker_hours": round(seconds / 3600, 3), "device": sel.setup.device,
                 "trials": len(rows)},
        "winner": None if winner is None else {"candidate": winner[0], "mean_score": round(winner[1], 4),
                                               "origin": pool[winner[0]].origin,
                                               "network": pool[winner[0]].genotype.summary()},
    }
    atomic_write_text(sel.sel_dir / "selection.json", json.dumps(record, indent=1, allow_nan=False) + "\n")
    if winner is None:
        raise NasReconError(f"selection: every finalist diverged; no genotype written (see "
                            f"{sel.sel_dir / 'trials.csv'})")
    c = pool[winner[0]]
    proposal = load_genotype(sel.run_dir / PROPOSAL)
    keep = {k: v for k, v in proposal.extra.items() if k not in ("selection_candidate",)}
    g = replace(c.genotype, extra={**keep, "select": "halving", "selection": {
        "candidate": winner[0], "origin": c.origin, "note": c.note, "seeds": list(plan.seeds),
        **winner_scores(winner[1], [scores[(winner[0], plan.rungs - 1, s)] for s in plan.seeds],
                        sel.setup.recipe.supervision == "ssdu"),
        "band": sel.band.to_dict(), "flops": genotype_flops(c.genotype), "cost": record["cost"],
        "darts_cell": proposal.summary()}})
    save_genotype(g, sel.run_dir / "genotype.json")
    return g


def winner_scores(mean: float, per_seed: list[float], ssdu: bool) -> dict[str, Any]:
    """The winner's validation figures for its genotype: PSNRs, or under SSDU its held-out k-space losses."""
    if ssdu:
        return {"mean_val_loss": round(-mean, 4), "val_loss": [round(-v, 4) for v in per_seed]}
    return {"mean_val_psnr": round(mean, 4), "val_psnr": [round(v, 4) for v in per_seed]}


def trained_epochs(plan: Plan, scores: dict[tuple[int, int, int], float]) -> int:
    """Epochs the selection trained (each job: from the candidate's previous rung, or from scratch)."""
    total = 0
    for _, r, s in scores:
        total += plan.epochs[r] - (plan.epochs[r - 1] if r and s == plan.seeds[0] else 0)
    return total


def summary(sel_dir: Path) -> dict[str, Any]:
    """selection.json of a finished selection ({} when absent or unreadable)."""
    try:
        data = json.loads((sel_dir / "selection.json").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}



def check_selection(cfg: Any) -> None:
    """--select halving's settings, before any work: the trials' recipe, the plan, the workers, the storage, the
    data's train/ and val/."""
    from nas_recon.select.study import open_storage

    recipe = load_recipe(cfg.recipe)
    make_plan(cfg.pool, recipe.epochs, cfg.rungs, cfg.eta, tuple(range(cfg.final_seeds)), cfg.finalists)
    check_workers(cfg.workers, cfg.device)
    if cfg.storage is not None:
        open_storage(cfg.storage)
    root = Path(cfg.data)
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise ConfigError(f"--data {root}: --select halving retrains on train/ and scores on val/; the folder "
                              f"has no {split}/ subfolder")


def run_halving_search(cfg: Any, resume: bool = False, progress: Any = None,
                       selection: SelectionProgress | None = None) -> Any:
    """`search --select halving`: the DARTS stage (skipped on a resume once it has written its cell), then the
    selection; returns the search's result with the winner as its genotype."""
    from nas_recon.search.run import SearchResult, prepare_run_dir, run_search

    cfg.check()
    check_selection(cfg)
    out = Path(cfg.out)
    if resume and (out / PROPOSAL).is_file():
        prepare_run_dir(cfg, resume)  # the same settings, the same data
        result = SearchResult(load_genotype(out / PROPOSAL), 0, False, out)
    else:
        result = run_search(cfg, resume, progress)
    from nas_recon.engine.dist import writes

    if not writes():  # data-parallel DARTS: rank 0 alone goes on to the selection
        return result
    g = run_selection(cfg, out, selection, workers=cfg.workers)
    return replace(result, genotype=g)
