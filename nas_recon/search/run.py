"""Bilevel first-order DARTS search driven by NNI's one-shot strategy (no experiment manager)."""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch.utils.data import DataLoader

from nas_recon import __version__
from nas_recon.data.coilmaps import resolve_estimator
from nas_recon.data.dataset import SliceDataset, list_volumes, split_volumes
from nas_recon.data.identity import data_record
from nas_recon.data.sampler import EpochSampler
from nas_recon.data.ssdu import SsduSplit
from nas_recon.device import resolve_device
from nas_recon.engine.checkpoint_io import EXTRA
from nas_recon.engine.dist import (
    ALONE,
    RankShare,
    World,
    broadcast,
    identical_on_ranks,
    run_on_ranks,
    sum_over_ranks,
    sync_gradients,
    writes,
)
from nas_recon.engine.progress import RunProgress
from nas_recon.engine.run import Run
from nas_recon.engine.tblog import Board
from nas_recon.engine.trainer import EXPLODED, StepReport, exploded
from nas_recon.errors import ConfigError, NasReconError
from nas_recon.genotype import Genotype, save_genotype
from nas_recon.memory import SUPERNET_BYTES_PER_PIXEL, check_fits
from nas_recon.models.init import layer_lr_groups
from nas_recon.physics.masks import MaskSpec
from nas_recon.runtime import configure
from nas_recon.search.config import FIXED_ON_RESUME, RECORD, SELECTIONS, STRATEGIES, SearchConfig
from nas_recon.search.derive import chosen_margin, count_skips, decision_stats, derive_genotype, weights_to_json
from nas_recon.search.nni_api import check_nni, is_arch_step, pin_arch_optimizer, resample
from nas_recon.search.penalty import ExpectedCost, describe, op_cost_table
from nas_recon.search.perturb import op_importance
from nas_recon.search.random_cells import sample_genotype, to_nni_sample
from nas_recon.search.selections import selection as selection_of
from nas_recon.search.strategies import strategy as strategy_of
from nas_recon.search.supernet import (
    arch_parameters,
    build_supernet,
    edge_alpha_map,
    edge_alphas,
    edge_weights,
    make_strategy,
    op_names,
    sample_one_op,
)
from nas_recon.search.unrolled import unrolled_oneshot
from nas_recon.space.spaces import SearchSpace, load_space
from nas_recon.train.losses import Objective, objective

logging.getLogger("nni").setLevel(logging.ERROR)

__all__ = ["FIXED_ON_RESUME", "SELECTIONS", "STRATEGIES", "SearchConfig", "run_search"]
SCORE_BATCHES = 8  # fixed train_alpha batches that score random candidates and DARTS-PT perturbations

@dataclass
class SearchResult:
    """What a finished search produced."""

    genotype: Genotype
    epochs_run: int
    stopped_early: bool
    run_dir: Path


SearchProgress = RunProgress  # the engine's hooks: step(epoch, step, weight loss, architecture loss)


class SearchTask(pl.LightningModule):
    """The inner Lightning module NNI wraps: L1 loss on the 2-channel output, Adam on the weights."""

    def __init__(self, model: torch.nn.Module, lr: float, bilevel: bool, layer_lr: bool = True,
                 loss_fn: Objective | None = None) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn or objective("l1")
        self.lr = lr
        self.layer_lr = layer_lr
        self.bilevel = bilevel
        self.penalty: tuple[float, ExpectedCost] | None = None  # (weight, expected relative cost)
        self.first_loss: float | None = None
        self.reset_sums()

    def reset_sums(self) -> None:
        self.sums = {"w": 0.0, "a": 0.0, "nw": 0, "na": 0, "cost": 0.0}
        self.last = {"w": float("nan"), "a": float("nan")}

    def set_model(self, model: torch.nn.Module) -> None:
        self.model = model

    def forward(self, batch) -> torch.Tensor:
        return self.model(*batch.inputs())

    def weight_loss(self, batch) -> torch.Tensor:
        """L1 on the 2-channel output (SSDU: its loss on the held-out k-space)."""
        return self.loss_fn(self(batch), batch)

    def arch_loss(self, batch) -> torch.Tensor:
        """The architecture step's loss (logged): L1, plus the weighted expected cost in a cost-aware search."""
        loss = self.weight_loss(batch)
        self.record("a", float(loss.detach()))
        if self.penalty is not None:
            weight, expected = self.penalty
            cost = expected()
            self.sums["cost"] += float(cost.detach())
            loss = loss + weight * cost
        return loss

    def record(self, key: str, loss: float) -> None:
        """Running sums for the epoch's log ("w": weight steps, "a": architecture steps)."""
        self.sums[key] += loss
        self.sums["n" + key] += 1
        self.last[key] = loss
        if key == "w" and self.first_loss is None:
            self.first_loss = loss  # the untrained supernet's: the reference a diverged loss is measured against

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        if self.bilevel and is_arch_step(batch_idx):
            return self.arch_loss(batch)
        loss = self.weight_loss(batch)
        self.record("w", float(loss.detach()))
        return loss

    def configure_optimizers(self):
        params = layer_lr_groups(self.model, self.lr) if self.layer_lr else self.model.parameters()
        return torch.optim.Adam(params, lr=self.lr)


class Monitor(Callback):
    """Per-epoch bookkeeping: losses, alphas, derived genotype, early stopping; saved in checkpoints."""

    def __init__(self, cfg: SearchConfig, space: SearchSpace, task: SearchTask, datasets: list[SliceDataset],
                 progress: SearchProgress, life: Run) -> None:
        self.cfg, self.space, self.task, self.datasets, self.progress = cfg, space, task, datasets, progress
        self.life, self.world = life, life.world
        self.history: list[dict[str, Any]] = []
        self.alpha_rows: list[dict[str, Any]] = []
        self.stable = 0
        self.last_cell: list | None = None
        self.last_weights: dict[str, dict[str, float]] | None = None
        self.t0 = time.time()
        self.board: Board | None = None  # TensorBoard, opened at the first epoch's end (never for a refused run)

    @property
    def state_key(self) -> str:
        return "nas_recon_monitor"

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "alpha_rows": self.alpha_rows, "stable": self.stable,
                "last_cell": self.last_cell, "last_weights": self.last_weights, "first_loss": self.task.first_loss}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = state["history"]
        self.alpha_rows = state["alpha_rows"]
        self.stable = state["stable"]
        self.last_cell = state["last_cell"]
        self.last_weights = state.get("last_weights")
        self.task.first_loss = state.get("first_loss")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        # NNI's path sampling (random one-shot) draws from Python's `random`: seeded per (seed, epoch), it is
        # reproducible, resumable, and the same on every rank
        random.seed(f"nas-recon/{self.cfg.seed}/{trainer.current_epoch}")
        for ds in self.datasets:
            ds.set_epoch(trainer.current_epoch)
        self.task.reset_sums()
        self.t0 = time.time()

    def check_finite(self, epoch: int) -> None:
        """Stop a diverged search before its checkpoint or any genotype is written from non-finite weights."""
        s = self.task.sums
        losses = [s["w"], s["a"]] if self.task.bilevel else [s["w"]]
        alphas = arch_parameters(self.task.model) if self.task.bilevel else []
        finite = all(math.isfinite(v) for v in losses) and all(bool(torch.isfinite(a).all()) for a in alphas)
        mean, first = s["w"] / max(1, s["nw"]), self.task.first_loss
        if finite and first is not None and exploded(mean, first):
            raise self.life.diverged(f"search diverged: the weight loss grew to {mean:.3g} in epoch {epoch}, over "
                                     f"{EXPLODED:g}x the untrained network's {first:.3g}", "lower --lr or --arch-lr")
        if finite:
            return
        what = "the architecture weights" if any(not bool(torch.isfinite(a).all()) for a in alphas) else "the loss"
        raise self.life.diverged(f"search diverged: {what} became non-finite in epoch {epoch}",
                                 "lower --arch-lr or --lr")

    def gather_sums(self, epoch: int) -> None:
        """Several ranks: the epoch's loss sums over all of them; and their alphas must be bit-identical."""
        if not self.world.distributed:
            return
        keys = ("w", "a", "nw", "na", "cost")
        s = self.task.sums
        s.update(dict(zip(keys, sum_over_ranks(self.world, [float(s[k]) for k in keys]), strict=True)))
        s["nw"], s["na"] = int(s["nw"]), int(s["na"])
        if not identical_on_ranks(self.world, arch_parameters(self.task.model)):
            raise NasReconError(f"search: the ranks' architecture parameters differ after epoch {epoch} (they are "
                                "averaged at every step); stopped, report this with your torch and NNI versions")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        self.gather_sums(epoch)
        self.check_finite(epoch)  # before this epoch's checkpoint (the saver runs after this callback)
        s = self.task.sums
        row: dict[str, Any] = {
            "epoch": epoch,
            "w_loss": s["w"] / max(1, s["nw"]),
            "alpha_loss": s["a"] / max(1, s["na"]) if self.task.bilevel else "",
            "seconds": round(time.time() - self.t0, 3),
        }
        if self.task.penalty is not None:
            row["expected_cost"] = round(s["cost"] / max(1, s["na"]), 6)
        if self.task.bilevel:
            weights = edge_weights(self.task.model, self.space)
            g = derive_genotype(weights, self.space, max_skips=self.cfg.max_skips)
            cell = [[list(n.inputs), list(n.ops)] for n in g.cell]
            self.stable = self.stable + 1 if cell == self.last_cell else 0
            self.last_cell = cell
            now = weights_to_json(weights)
            drift = max((abs(v - self.last_weights[e][o]) for e, w in now.items() for o, v in w.items()),
                        default=0.0) if self.last_weights else 1.0
            self.last_weights = now
            stats = decision_stats(weights, self.space.nodes, self.space.ops, self.space.backbone)
            margin = chosen_margin(stats, g.cell)
            decided = margin >= max(self.cfg.decide_margin, 2 * drift)
            row.update({"genotype": g.describe(), "skips": count_skips(g.cell), "unchanged_epochs": self.stable,
                        "chosen_margin": round(margin, 6), "drift": round(drift, 6), "decided": int(decided),
                        **stats})
            for (i, j), w in sorted(weights.items()):
                for op, v in w.items():
                    self.alpha_rows.append({"epoch": epoch, "node": i, "input": j, "op": op, "weight": v})
            # stop early only on a genotype that is unchanged AND decided (margins above noise and drift)
            if self.stable >= self.cfg.patience and decided:
                trainer.should_stop = True
        self.history.append(row)
        if not self.world.main:
            return
        self.life.log("search_log.csv", self.history)
        self.life.log("alphas.csv", self.alpha_rows)
        if self.board is None:
            self.board = self.life.board()
        if self.board.active:
            self.board.scalars({"loss/weights": row["w_loss"], "loss/alphas": row["alpha_loss"],
                                "decision/chosen_margin": row.get("chosen_margin"),
                                "decision/drift": row.get("drift"), "cost/expected": row.get("expected_cost")}, epoch)
            self.board.scalars({f"alpha/n{r['node']}_{r['input']}/{r['op']}": r["weight"] for r in self.alpha_rows
                                if r["epoch"] == epoch}, epoch)
        self.life.save(trainer)  # last.pt, the monitor's state and this epoch's row included
        self.progress.epoch_end(row)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[EXTRA] = {"model": {"name": "supernet", "space": self.cfg.space, "strategy": self.cfg.strategy},
                             "epoch": trainer.current_epoch + 1}


def train_folder(cfg: SearchConfig) -> Path:
    """DATA/train, or DATA itself when it has no train/ subfolder."""
    root = Path(cfg.data)
    return root / "train" if (root / "train").is_dir() else root


def load_splits(cfg: SearchConfig) -> tuple[list[Path], list[Path]]:
    """train_w and train_alpha: disjoint volume-level splits of the training folder."""
    return split_volumes(list_volumes(train_folder(cfg)), cfg.split, cfg.seed)


def prepare_run_dir(cfg: SearchConfig, resume: bool) -> tuple[Path | None, dict[str, Any]]:
    """Check the run folder (nothing written): the checkpoint to resume from (or None) and the data record."""
    out = Path(cfg.out)
    run_json = RECORD.file(out)
    ckpt = RECORD.resumable(out)
    RECORD.check_new(out, resume, run_json)
    record = data_record(train_folder(cfg))
    if resume and run_json.exists():
        meta = RECORD.read(out)
        saved = meta.get("config")
        if not isinstance(saved, dict):
            raise ConfigError(f"{run_json}: unreadable run record (no 'config' object); use another --out")
        # the data known by content (an older run.json: by its resolved folder)
        was = meta.get("data_record", str(train_folder(replace(cfg, data=str(saved.get("data", cfg.data))))))
        RECORD.check_resume(out, {**asdict(cfg), "data": record}, {**saved, "data": was})
    return (ckpt if resume else None), record


def check_search_checkpoint(path: Path, module: pl.LightningModule) -> None:
    """Refuse a checkpoint Lightning could not resume this search from (damaged, foreign, another supernet)."""
    try:
        ck = RECORD.checkpoint_io().load_checkpoint(path)
    except ConfigError as e:
        raise ConfigError(f"{e}; use another --out") from None
    need = ("state_dict", "epoch", "optimizer_states", "loops", "pytorch-lightning_version")
    if not isinstance(ck, dict) or any(k not in ck for k in need):
        raise ConfigError(f"{path}: not a search checkpoint (expected Lightning's {', '.join(need)}); "
                          "use another --out")
    have, want = set(ck["state_dict"]) if isinstance(ck["state_dict"], dict) else set(), set(module.state_dict())
    if have != want:
        odd = sorted(have ^ want)[0]
        raise ConfigError(f"{path}: checkpoint holds another supernet than this search builds (e.g. "
                          f"'{odd}' differs); use another --out")


def run_search(cfg: SearchConfig, resume: bool = False, progress: SearchProgress | None = None) -> SearchResult:
    """Run (or resume) a search and write genotype.json, alphas.csv, search_log.csv, cell.svg/png.

    `--select halving` (run through nas_recon.select.halving.run_halving_search): this DARTS stage writes its cell
    as darts_genotype.json; the selection then writes genotype.json.
    """
    cfg.check()
    check_nni()
    progress = progress or SearchProgress()
    space = load_space(cfg.space)
    if cfg.cell_bias:
        space = replace(space, bias=True)
    band = check_band(cfg, space)
    if cfg.max_skips is not None and set(space.real_ops) == {"skip_connect"} and cfg.max_skips < 2 * space.nodes:
        raise ConfigError(f"--max-skips {cfg.max_skips}: space '{space.name}' has no op but skip_connect, so every "
                          f"derived cell has {2 * space.nodes} skips; the cap cannot be met")
    device = resolve_device(cfg.device)
    w_files, a_files = load_splits(cfg)
    ds_w, ds_a = split_dataset(cfg, w_files, 0), split_dataset(cfg, a_files, 1)
    if cfg.maps_dir is not None and not ds_w.coils:
        raise ConfigError(f"--maps-dir: {train_folder(cfg)} holds single-coil data (no coil sensitivities to cache); "
                          "it would be recorded and not used")
    return run_on_ranks(cfg.batch_size, device, cfg.out, "search", lambda world, dev: _search(
        cfg, resume, progress if world.main else SearchProgress(), space, dev, ds_w, ds_a, (w_files, a_files), world,
        band))


def check_band(cfg: SearchConfig, space: SearchSpace) -> Any:
    """The FLOPs band of --flops-target (None without one), refused at once when no cell of the space meets it."""
    if cfg.flops_target is None:
        return None
    from nas_recon.search.budget import parse_flops_target
    from nas_recon.search.derive import derive_in_band, edges

    band = parse_flops_target(cfg.flops_target, cfg.flops_band)
    uniform = {e: {o: 1.0 for o in space.ops} for e in edges(space.nodes, space.backbone)}
    derive_in_band(uniform, space, band, max_skips=cfg.max_skips)  # raises naming --flops-target
    return band


def split_dataset(cfg: SearchConfig, files: list[Path], offset: int) -> SliceDataset:
    """train_w (offset 0) or train_alpha (offset 1): training crops and masks drawn from seed + offset."""
    masks = MaskSpec(cfg.mask_type, tuple(cfg.accelerations))
    ssdu = SsduSplit(cfg.ssdu_rho, cfg.ssdu_selection) if cfg.supervision == "ssdu" else None
    return SliceDataset(files, cfg.size, cfg.crop, masks, "train", cfg.seed + offset, cfg.max_slices,
                        repeats=cfg.repeats, maps_dir=cfg.maps_dir or Path(cfg.out) / "maps", write_maps=writes(),
                        ssdu=ssdu, coil_estimator=cfg.coil_estimator)


def split_loader(cfg: SearchConfig, ds: SliceDataset, offset: int, world: World = ALONE) -> DataLoader:
    """The split's loader: a seeded permutation of its samples every epoch (with several ranks, this rank's share
    of it in batches of --batch-size / ranks: the ranks' batches of a step make the one-process batch)."""
    order = EpochSampler(len(ds), cfg.seed + offset)
    if not world.distributed:
        return DataLoader(ds, cfg.batch_size, sampler=order)
    return DataLoader(ds, cfg.batch_size // world.size, sampler=RankShare(order, world))


def _search(cfg: SearchConfig, resume: bool, progress: SearchProgress, space: Any, device: torch.device,
            ds_w: SliceDataset, ds_a: SliceDataset, files: tuple[list[Path], list[Path]],
            world: World = ALONE, band: Any = None) -> SearchResult:
    """run_search inside the run folder's lock (rank 0) or beside it (the other ranks, which never write)."""
    side = cfg.crop or cfg.size
    check_fits("search", cfg.batch_size // world.size, side, side, SUPERNET_BYTES_PER_PIXEL, device,
               "use a smaller --crop or --batch-size")
    life = Run(RECORD, Path(cfg.out), resume, world)
    ckpt, record = life.on_main(lambda: prepare_run_dir(cfg, resume))
    out = life.out
    w_files, a_files = files

    configure()
    torch.manual_seed(cfg.seed)
    strat = strategy_of(cfg.strategy)
    bilevel = strat.bilevel  # alternate weight and architecture steps
    strategy = make_strategy(cfg.strategy, cfg.arch_lr, cfg.grad_clip, (cfg.tau_max, cfg.tau_min))
    supernet = build_supernet(space, strategy, partial=strat.partial).to(memory_format=torch.channels_last)
    if strat.one_op:
        sample_one_op(supernet)
    sync_gradients(world, supernet.parameters())  # several ranks: every gradient averaged as it is accumulated
    loss_fn = objective("l1", cfg.supervision)
    task = SearchTask(supernet, cfg.lr, bilevel, cfg.layer_lr, loss_fn)
    task.world = world
    costs = None
    if cfg.cost is not None and bilevel:  # measured (and cached in --out) by rank 0, the same table everywhere
        costs = broadcast(world, op_cost_table(out, space, cfg.cost, side, cfg.batch_size, device)
                          if world.main else None)
        names = op_names(supernet)
        task.penalty = (cfg.cost_weight, ExpectedCost(edge_alphas(supernet, space), names, costs))
    if strat.unrolled:
        oneshot = unrolled_oneshot(task, cfg.arch_lr, cfg.grad_clip)
    else:
        oneshot = strategy.configure_oneshot_module(task)
    if bilevel:
        # a fixed traversal order of the alphas makes checkpoints portable across processes
        pin_arch_optimizer(oneshot, arch_parameters(supernet), lambda ps: torch.optim.Adam(
            ps, cfg.arch_lr, betas=(0.5, 0.999), weight_decay=cfg.arch_weight_decay))
    if ckpt is not None:
        life.on_main(lambda: check_search_checkpoint(ckpt, oneshot))
    # run.json: the settings and the training data's record (written once every check has passed)
    maps = resolve_estimator(cfg.coil_estimator).method if ds_w.coils else None
    life.write_record({"config": asdict(cfg), "data_record": record, "coils": ds_w.coils, "maps": maps})
    w_loader, a_loader = split_loader(cfg, ds_w, 0, world), split_loader(cfg, ds_a, 1, world)
    score_loader = split_loader(cfg, ds_a, 1)  # scoring after the search: the same fixed batches on every rank
    loaders = strategy.train_dataloader(lambda: w_loader, lambda: a_loader)

    monitor = Monitor(cfg, space, task, [ds_w, ds_a], progress, life)  # writes last.pt at every epoch's end
    report = StepReport(lambda epoch, step: progress.step(epoch, step, task.last["w"],
                                                          task.last["a"] if bilevel else None))
    trainer = life.trainer(device, cfg.epochs, cfg.precision, [monitor, report],
                           grad_clip=None if bilevel else cfg.grad_clip)
    steps = max(len(w_loader), len(a_loader)) if bilevel else len(w_loader)
    progress.start(cfg.epochs, steps, 0)
    try:
        life.fit(trainer, oneshot, loaders, ckpt)
    finally:
        if monitor.board is not None:
            monitor.board.close()

    epochs_run = len(monitor.history)
    stopped_early = bilevel and epochs_run < cfg.epochs
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("out", "device")}
    extra: dict[str, Any] = {
        "search": settings, "package_version": __version__, "seed": cfg.seed, "device": str(device),
        "data": {"folder": str(Path(cfg.data).resolve()), "content": record["digest"],
                 "train_w": [p.name for p in w_files],
                 "train_alpha": [p.name for p in a_files]},
        "epochs_run": epochs_run, "stopped_early": stopped_early,
    }
    if bilevel and monitor.history:
        last = monitor.history[-1]
        extra.update({"decided": bool(last["decided"]), "final_margin": last["chosen_margin"],
                      "final_drift": last["drift"], "decide_margin": cfg.decide_margin})
    if bilevel:
        weights = edge_weights(supernet, space)
        extra["alphas"] = weights_to_json(weights)
        if selection_of(cfg.select).perturbation:
            extra["alpha_cell"] = derive_genotype(weights, space, max_skips=cfg.max_skips).describe()
            weights, base = perturbation_scores(supernet, space, score_loader, device, cfg.supervision)
            extra.update({"select": cfg.select, "importance": weights_to_json(weights), "alpha_split_l1": base})
        uncapped = count_skips(derive_genotype(weights, space).cell)
        if band is not None:
            free = derive_genotype(weights, space, max_skips=cfg.max_skips)
            extra.update({"flops_band": band.to_dict(), "unconstrained_cell": free.summary()})
        genotype = derive_genotype(weights, space, extra, cfg.max_skips, band)
        genotype.extra.update({"skips": count_skips(genotype.cell), "skips_uncapped": uncapped,
                               "max_skips": cfg.max_skips})
        if costs is not None:
            genotype.extra.update({"cost": cfg.cost, "cost_weight": cfg.cost_weight,
                                   "op_costs": describe(costs, cfg.cost)})
    else:
        genotype = pick_random(cfg, space, supernet, score_loader, device, extra, band)
    if world.main:
        save_genotype(genotype, out / selection_of(cfg.select).writes)
        from nas_recon.draw import draw_cell

        draw_cell(genotype, out / "cell")
    return SearchResult(genotype, epochs_run, stopped_early, out)


def fixed_batches(loader: DataLoader, n: int) -> list:
    """The loader's first n batches of epoch 0 (the same crops and masks on every call)."""
    loader.dataset.set_epoch(0)
    loader.sampler.set_epoch(0)
    return [b for _, b in zip(range(n), loader, strict=False)]


def batches_l1(batches: list, device: torch.device, supervision: str = "full") -> Any:
    """model -> mean L1 of its output over `batches` (SSDU: its loss on the held-out k-space)."""
    loss_fn = objective("l1", supervision)

    def loss(model: torch.nn.Module) -> float:
        return float(np.mean([loss_fn(model(*b.inputs(device)), b.to(device)).item() for b in batches]))

    return loss


def perturbation_scores(supernet, space: SearchSpace, loader: DataLoader, device: torch.device,
                        supervision: str = "full") -> tuple[Any, float]:
    """DARTS-PT op importances of the trained supernet on fixed train_alpha batches, and its unperturbed loss."""
    supernet = supernet.to(device).eval()
    loss = batches_l1(fixed_batches(loader, SCORE_BATCHES), device, supervision)
    return op_importance(edge_alpha_map(supernet, space), op_names(supernet), loss, supernet)


@torch.no_grad()
def pick_random(cfg: SearchConfig, space: SearchSpace, supernet, loader: DataLoader, device: torch.device,
                extra: dict[str, Any], band: Any = None) -> Genotype:
    """Random search with weight sharing: score seeded random cells on train_alpha, keep the best (with a FLOPs
    band: cells whose network at the supernet's point, or at a width the space allows, lies inside it)."""
    from nas_recon.search.budget import fit_channels

    rng = np.random.default_rng([cfg.seed, 4242])
    supernet = supernet.to(device).eval()
    l1 = batches_l1(fixed_batches(loader, SCORE_BATCHES), device, cfg.supervision)
    scored = []
    tries = 0
    while len(scored) < cfg.candidates:
        tries += 1
        g = sample_genotype(space, rng)
        fit = g if band is None else fit_channels(g, band, space.values("channels"))
        if fit is None:
            if tries > 100 * cfg.candidates:
                raise ConfigError(f"--flops-target: after {tries} draws no random cell of space '{space.name}' lies "
                                  f"within {band.describe()}")
            continue
        resample(supernet, to_nni_sample(g.cell))
        scored.append((l1(supernet), fit))
    scored.sort(key=lambda t: t[0])
    best_loss, best = scored[0]
    ranked = [{"cell": c.describe(), "alpha_split_l1": v} for v, c in scored]
    return replace(best, extra={**extra, "random_candidates": ranked, "alpha_split_l1": best_loss})
