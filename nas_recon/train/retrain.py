"""Retraining from scratch (searched nets and baselines alike) under one recipe, resumable."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from nas_recon.data.dataset import SliceDataset
from nas_recon.data.identity import data_record
from nas_recon.data.sample import unscaled_magnitudes
from nas_recon.data.sampler import EpochSampler
from nas_recon.data.ssdu import SsduSplit, ssdu_losses
from nas_recon.data.transforms import INPUT_MAX
from nas_recon.device import place, resolve_device
from nas_recon.engine.checkpoint import check_kind, read_checkpoint, save_checkpoint
from nas_recon.engine.checkpoint_io import EXTRA
from nas_recon.engine.dist import (
    ALONE,
    ShardedBatches,
    World,
    gather_rows,
    mean_over_ranks,
    run_on_ranks,
    writes,
)
from nas_recon.engine.progress import RunProgress
from nas_recon.engine.record import RunRecord
from nas_recon.engine.run import Run
from nas_recon.engine.tblog import Board
from nas_recon.engine.trainer import EXPLODED, StepReport, exploded
from nas_recon.errors import ConfigError, DataError
from nas_recon.evaluate.metrics import slice_metrics
from nas_recon.genotype import load_genotype
from nas_recon.memory import NETWORK_BYTES_PER_PIXEL, check_fits, check_model_fits
from nas_recon.models.init import layer_lr_groups
from nas_recon.models.registry import CLASSICAL, ModelSpec, build_model, count_params, spec_for_genotype
from nas_recon.physics.fft import chan_to_complex
from nas_recon.physics.fusion import CG_ITERATIONS, KSpaceFusion
from nas_recon.physics.masks import MaskSpec
from nas_recon.runtime import configure
from nas_recon.train.config import RetrainConfig
from nas_recon.train.losses import objective
from nas_recon.train.precision import autocast, check_precision
from nas_recon.train.recipe import Recipe, check_recipe_size, for_model

RetrainProgress = RunProgress  # the engine's hooks


def data_folders(root: str | Path) -> tuple[Path, Path]:
    """train/ and val/ of a data folder, or a clear error."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    missing = [s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        raise DataError(f"{root}: data folder has no {' or '.join(s + '/' for s in missing)} subfolder")
    return root / "train", root / "val"


def model_spec(cfg: RetrainConfig) -> ModelSpec:
    """The ModelSpec from --genotype or --model."""
    if (cfg.model is None) == (cfg.genotype is None):
        raise ConfigError("give exactly one of --genotype FILE or --model NAME")
    dc = {"lam": 1.0, "learnable_lam": True} if cfg.soft_dc else {}
    from nas_recon.models.registry import FIXED_WIDTH

    if cfg.channels is not None and (cfg.genotype is not None or (cfg.model or "") in FIXED_WIDTH):
        what = "a genotype carries its own channels" if cfg.genotype else f"'{cfg.model}' has a fixed configuration"
        raise ConfigError(f"--channels: {what}; it would be recorded and not used")
    if cfg.channels is not None and not 1 <= cfg.channels <= 1024:
        raise ConfigError(f"--channels: expected an integer in [1, 1024], got {cfg.channels}")
    if cfg.stop_epoch is not None and not 1 <= cfg.stop_epoch <= cfg.recipe.epochs:
        raise ConfigError(f"stop_epoch: expected 1..{cfg.recipe.epochs} (the recipe's epochs), got {cfg.stop_epoch}")
    if cfg.validate not in ("every", "end"):
        raise ConfigError(f"validate: expected every or end, got {cfg.validate!r}")
    if cfg.genotype is not None:
        return replace(spec_for_genotype(load_genotype(cfg.genotype)), cg_iterations=cfg.cg_iterations, **dc)
    if cfg.model in CLASSICAL or cfg.model == "zero-filled":
        raise ConfigError(f"--model: '{cfg.model}' has nothing to train (use nas-recon evaluate --model {cfg.model})")
    spec = ModelSpec(cfg.model, cg_iterations=cfg.cg_iterations, **dc)
    if cfg.channels is not None:
        spec = replace(spec, channels=cfg.channels)
    net = build_model(spec)  # validates the name
    if cfg.soft_dc and not any(isinstance(m, KSpaceFusion) for m in net.modules()):
        raise ConfigError(f"--soft-dc: '{cfg.model}' has no k-space fusion to soften")
    return spec


def check_acting_flags(cfg: RetrainConfig, coils: int) -> None:
    """Refuse a flag that cannot act on this run (it would be recorded in run.json and change nothing)."""
    if cfg.cg_iterations != CG_ITERATIONS and not cfg.soft_dc:
        raise ConfigError("--cg-iterations: acts only with --soft-dc (the conjugate-gradient steps of a multi-coil "
                          "soft data consistency); it would be recorded and not used")
    if cfg.cg_iterations != CG_ITERATIONS and not coils:
        raise ConfigError(f"--cg-iterations: {cfg.data} holds single-coil data, whose soft data consistency is a "
                          "closed form (no conjugate gradients); it would be recorded and not used")
    if cfg.init_freeze is not None and cfg.init is None:
        raise ConfigError("--init-freeze: acts only with --init (it freezes the pretrained encoder for a share of the "
                          "epochs); it would be recorded and not used")
    if cfg.maps_dir is not None and not coils:
        raise ConfigError(f"--maps-dir: {cfg.data} holds single-coil data (no coil sensitivities to cache); it would "
                          "be recorded and not used")


def genotype_extra(path: str | None) -> dict[str, Any]:
    """Provenance kept from a genotype file (how it was found or sampled)."""
    if path is None:
        return {}
    extra = load_genotype(path).extra
    keep = ("sampled", "search", "seed", "stopped_early", "epochs_run", "decided", "final_margin", "select",
            "selection", "flops_band")
    return {k: extra[k] for k in keep if k in extra}


@torch.no_grad()
def validate(model: torch.nn.Module, loader: DataLoader, device: torch.device,
             precision: str = "32", world: World = ALONE) -> dict[str, float]:
    """Mean PSNR/SSIM on magnitudes (original units) with the fixed evaluation masks (no autograd graph); SSDU
    samples (no reference): {"loss": the mean held-out k-space loss}.

    With several ranks each validates its share of `loader`'s dataset and the means cover every slice once.
    """
    model.eval()
    rows: list[tuple[int, dict[str, float]]] = []
    n = len(loader.dataset)  # type: ignore[arg-type]
    mine = list(range(world.rank, n, world.size))
    for s in range(0, len(mine), loader.batch_size or 1):
        idx = mine[s:s + (loader.batch_size or 1)]
        b = loader.collate_fn([loader.dataset[i] for i in idx])
        with autocast(precision, device.type):
            out = model(*b.inputs(device))
        out = out.float().cpu()
        if b.holdout_mask.numel():  # SSDU: no reference; the loss on each slice's held-out k-space
            rows.extend((j, {"loss": float(v)}) for j, v in zip(idx, ssdu_losses(out, b), strict=True))
            continue
        for i, (gt, pred) in enumerate(unscaled_magnitudes(out, b)):
            rows.append((idx[i], {**slice_metrics(gt, pred, float(b.max_value[i])), "acc": float(b.acceleration[i])}))
    model.train()
    every = gather_rows(world, rows)
    if "loss" in every[0]:  # SSDU: the held-out loss alone
        return {"loss": float(np.mean([r["loss"] for r in every]))}
    means = {k: float(np.mean([r[k] for r in every])) for k in ("psnr", "ssim")}
    for acc in sorted({r["acc"] for r in every}):  # per acceleration, for TensorBoard (the CSV keeps the means)
        for k in ("psnr", "ssim"):
            means[f"{k}_{acc:g}x"] = float(np.mean([r[k] for r in every if r["acc"] == acc]))
    return means


@torch.no_grad()
def val_panels(model: torch.nn.Module, val: SliceDataset, device: torch.device, precision: str) -> list[torch.Tensor]:
    """Magnitudes of the first validation slice: zero-filled, output, target, |output - target|."""
    b = val[0].batched()
    model.eval()
    with autocast(precision, device.type):
        out = model(*b.inputs(device))
    model.train()
    zf, pred, gt = (chan_to_complex(t[0].float().cpu()).abs() for t in (b.input, out, b.target))
    return [zf, pred, gt, (pred - gt).abs()]


def run_retrain(cfg: RetrainConfig, resume: bool = False, progress: RetrainProgress | None = None) -> dict[str, Any]:
    """Train a model from scratch with the recipe; keep last.pt (resumable) and best.pt (val PSNR)."""
    progress = progress or RetrainProgress()
    spec = model_spec(cfg)
    cfg = replace(cfg, recipe=for_model(cfg.recipe, spec.name, cfg.size))
    r = cfg.recipe
    check_recipe_size(r, cfg.size)
    loss_fn = objective(r.loss, r.supervision)
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device.type)
    train_dir, val_dir = data_folders(cfg.data)
    masks = MaskSpec(r.mask_type, tuple(r.accelerations))
    maps = cfg.maps_dir or Path(cfg.out) / "maps"  # multi-coil: ESPIRiT maps, read by every rank, written by rank 0
    ssdu = SsduSplit(r.ssdu_rho, r.ssdu_selection) if r.supervision == "ssdu" else None
    ds = SliceDataset(train_dir, cfg.size, r.crop or None, masks, "train", cfg.seed, r.max_slices or None,
                      repeats=r.repeats, maps_dir=maps, write_maps=writes(), ssdu=ssdu,
                      coil_estimator=cfg.coil_estimator)
    val = SliceDataset(val_dir, cfg.size, r.val_crop or None, masks, "eval", cfg.seed, r.val_max_slices or None,
                       maps_dir=maps, write_maps=writes(), ssdu=ssdu, coil_estimator=cfg.coil_estimator)
    if val.coils != ds.coils:
        raise DataError(f"{cfg.data}: train/ has {ds.coils or 'single'}-coil and val/ {val.coils or 'single'}-coil "
                        "volumes; both need the same kind")
    check_acting_flags(cfg, ds.coils)
    encoder: list[str] = []  # the pretrained tensors' names (--init-freeze holds them still)
    if cfg.init is not None:  # refused before anything is written: another model, width or shape
        from nas_recon.train.pretrain import load_pretrained

        encoder = load_pretrained(cfg.init, spec, build_model(spec))
    if r.mixup:
        if ds.coils:
            raise ConfigError(f"--mixup: mixes single-coil slices (each mixture measured again under one mask); "
                              f"{train_dir} holds {ds.coils}-coil volumes")
        from nas_recon.data.mixup import MixupDataset

        ds = MixupDataset(ds, r.mixup, cfg.seed)
    side = r.crop or cfg.size
    width = cfg.size if ssdu else side  # SSDU crops rows only
    check_fits("retrain", r.batch_size, side, width, NETWORK_BYTES_PER_PIXEL, device,
               "use a smaller crop (--crop) or --batch-size")
    check_model_fits("retrain", spec, r.batch_size, side, width, device, True,
                     "use a smaller model, crop (--crop) or --batch-size")
    out = Path(cfg.out)
    return run_on_ranks(r.batch_size, device, out, "retrain", lambda world, dev: _train(
        cfg, spec, dev, ds, val, out, resume, progress if world.main else RetrainProgress(), loss_fn, world,
        encoder))


FIXED_ON_RESUME = ("model", "recipe", "data", "seed", "size", "precision", "init", "init_freeze", "coil_estimator")
# what a run.json written before the key existed meant
RECORD_DEFAULTS = {"precision": "32", "init": None, "init_freeze": None, "coil_estimator": "auto"}
RECORD = RunRecord("retrain", FIXED_ON_RESUME, RECORD_DEFAULTS, "retrain")
RESUME_STATE = ("lightning", "scheduler", "rng", "epoch", "best_psnr", "history")  # what last.pt adds to weights


class RetrainTask(pl.LightningModule):
    """Retraining as a LightningModule: the recipe's loss, Adam and its lr drop; at each epoch's end validation,
    best.pt, last.pt (resumable), train_log.csv and TensorBoard (rank 0 alone writes)."""

    def __init__(self, run: RetrainRun, net: torch.nn.Module, history: list[dict[str, Any]], best_psnr: float,
                 frozen: Sequence[str] = ()) -> None:
        super().__init__()
        self.run, self.net = run, net
        # --init-freeze: the pretrained encoder's parameters, held still for the first epochs
        names = set(frozen)
        object.__setattr__(self, "frozen", [p for n, p in net.named_parameters() if n in names])
        share = run.cfg.init_freeze or 0.0
        self.frozen_epochs = math.ceil(run.cfg.recipe.epochs * share - 1e-9) if self.frozen else 0
        self.history, self.best_psnr = history, best_psnr
        self.sched: Any = None
        self.first_loss: float | None = None
        self.restored: dict[str, Any] | None = None  # the last.pt being resumed (applied when training starts)
        self.total, self.n, self.t0, self.last_loss = 0.0, 0, time.time(), float("nan")
        # the network that computes the training steps: DDP-wrapped across ranks (kept out of the module tree,
        # so that checkpoints hold `net` alone)
        train_net = net
        if run.world.distributed:
            dev = run.device
            train_net = torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[dev.index] if dev.type == "cuda" else None)
        object.__setattr__(self, "train_net", train_net)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        opt = make_optimizer(self.run, self.net)
        self.sched = make_scheduler(self.run.cfg.recipe, opt)  # stepped here at each epoch's end, before last.pt
        return opt

    def on_train_start(self) -> None:
        if self.restored is not None:
            self.sched.load_state_dict(self.restored["scheduler"])
            torch.set_rng_state(self.restored["rng"])

    def on_train_epoch_start(self) -> None:
        if self.first_loss is None:  # resumed: the first epoch's mean (a fresh run: its first batch, below)
            self.first_loss = next((float(h["train_loss"]) for h in self.history
                                    if h.get("train_loss") not in ("", None)), None)
        self.run.ds.set_epoch(self.current_epoch)
        self.run.sampler.set_epoch(self.current_epoch)
        self.total, self.n, self.t0 = 0.0, 0, time.time()

    def training_step(self, b, step: int) -> torch.Tensor:
        run = self.run
        # the network's own draws (dropout) from a generator seeded per (seed, epoch, step, rank): a resumed run
        # makes the same ones, whatever the loaders drew from the global generator before
        torch.manual_seed(int(np.random.SeedSequence([run.cfg.seed, self.current_epoch, step,
                                                      run.world.rank]).generate_state(1)[0]))
        pred = self.train_net(*b.inputs())
        with torch.autocast(run.device.type, enabled=False):
            loss = run.loss_fn(pred.float(), b)  # the loss in float32, as the fusion
        if run.world.distributed:  # this rank's share, weighted: DDP's gradient mean = the global batch's
            loss = loss * run.sampler.factors[step]
        batch_loss = mean_over_ranks(run.world, loss)  # the global batch's loss, the same on every rank
        if self.first_loss is None and torch.isfinite(batch_loss):
            self.first_loss = float(batch_loss)  # the untrained network's: a loss far above it has diverged
        first = self.first_loss
        if not torch.isfinite(batch_loss) or (first is not None and exploded(float(batch_loss), first)):
            what = (f"became {float(batch_loss)}" if not torch.isfinite(batch_loss) else
                    f"grew to {float(batch_loss):.3g}, over {EXPLODED:g}x the untrained network's {first:.3g}")
            raise run.lifecycle.diverged(f"loss {what} at epoch {self.current_epoch + 1} step {step + 1}")
        self.last_loss = float(batch_loss)
        self.total += self.last_loss
        self.n += 1
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.current_epoch < self.frozen_epochs:  # no gradient: Adam leaves them (and their moments) untouched
            for p in self.frozen:
                p.grad = None

    def on_train_epoch_end(self) -> None:
        run, r = self.run, self.run.cfg.recipe
        epoch = self.current_epoch
        g = self.trainer.optimizers[0].param_groups[0]
        lr = r.lr * g["lr"] / g["initial_lr"]  # the recipe's lr at this epoch (groups may scale it)
        self.sched.step()
        stop = run.cfg.stop_epoch or r.epochs
        validating = run.cfg.validate == "every" or epoch + 1 == stop
        metrics = validate(self.net, run.val_loader, run.device, run.cfg.precision, run.world) if validating else {}
        seconds = round(time.time() - self.t0, 3)
        row = {"epoch": epoch + 1, "train_loss": self.total / max(1, self.n), "val_psnr": metrics.get("psnr", ""),
               "val_ssim": metrics.get("ssim", ""), "lr": lr, "seconds": seconds,
               "step": self.history[-1]["step"] + self.n,
               "wall_seconds": round(self.history[-1]["wall_seconds"] + seconds, 3),
               **({"val_loss": metrics.get("loss", "")} if run.ssdu else {})}
        self.history.append(row)
        improved = validating and score(metrics) > self.best_psnr
        if validating:
            self.best_psnr = max(self.best_psnr, score(metrics))
        if not run.world.main:
            return
        if improved:
            save_checkpoint(run.out / "best.pt", {**run.common, "state_dict": self.net.state_dict(),
                                                  "epoch": epoch + 1, "val": metrics})
        run.lifecycle.save(self.trainer)  # last.pt in the one format, with on_save_checkpoint's fields
        run.lifecycle.log("train_log.csv", self.history)
        board = run.board
        board.scalars({"loss/train": row["train_loss"], "val/psnr": row["val_psnr"], "val/ssim": row["val_ssim"],
                       "val/held_out_loss": row.get("val_loss", ""),
                       "lr": lr, **{f"val/{k}": v for k, v in metrics.items() if k.endswith("x")}}, row["step"])
        if board.active:  # an extra forward pass: only when it is written
            board.image("val/zero-filled|output|target|error",
                        val_panels(self.net, run.val, run.device, run.cfg.precision), row["step"])
        run.progress.epoch_end(row)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[EXTRA] = {**self.run.common, "scheduler": self.sched.state_dict(), "rng": torch.get_rng_state(),
                             "epoch": self.current_epoch + 1, "best_psnr": self.best_psnr, "history": self.history}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.restored = checkpoint[EXTRA]


@dataclass
class RetrainRun:
    """What a retraining's epochs need besides the network (one object, for the LightningModule)."""

    cfg: RetrainConfig
    device: torch.device
    lifecycle: Run  # the folder, the ranks, the checkpoint and the logs
    ds: SliceDataset
    val: SliceDataset
    sampler: ShardedBatches
    val_loader: DataLoader
    loss_fn: Any
    common: dict[str, Any]
    board: Board
    progress: RetrainProgress

    @property
    def world(self) -> World:
        return self.lifecycle.world

    @property
    def out(self) -> Path:
        return self.lifecycle.out

    @property
    def ssdu(self) -> bool:
        """Self-supervised: no references, validation by the held-out k-space loss."""
        return self.cfg.recipe.supervision == "ssdu"


def score(metrics: dict[str, float]) -> float:
    """What best.pt maximises: the validation PSNR, or minus the held-out loss under SSDU (kept in the checkpoints'
    `best_psnr` key, so that runs written before SSDU still resume)."""
    return metrics["psnr"] if "psnr" in metrics else -metrics["loss"]


def make_optimizer(run: RetrainRun, net: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam at the recipe's lr; the paper's cell networks (searched and random dag cells) get per-conv learning
    rates scaled by their init std; chain networks train as the baselines they generalise (plain Adam)."""
    r = run.cfg.recipe
    model = run.common["model"]
    cells = model["name"] == "searched" and (model.get("genotype") or {}).get("backbone", "dag") == "dag"
    return torch.optim.Adam(layer_lr_groups(net, r.lr) if r.layer_lr and cells else net.parameters(), lr=r.lr)


def make_scheduler(r: Recipe, opt: torch.optim.Optimizer) -> Any:
    """The recipe's one lr drop, after the first `lr_drop` share of the epochs ('first half' rounds up)."""
    drop = max(1, math.ceil(r.epochs * r.lr_drop - 1e-9))
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[drop], gamma=r.lr_after / r.lr)


def check_resumable(last: Path, spec: ModelSpec, run: RetrainRun, net: torch.nn.Module) -> dict[str, Any]:
    """last.pt, read and checked against this run before Lightning restores it (one-line errors)."""
    ck = read_checkpoint(last)
    check_kind(last, ck, "retrain")
    if ck["model"] != spec.to_dict():
        raise ConfigError(f"{last}: checkpoint holds another model than {spec.name} ({ck['model']!r})")
    missing = [k for k in RESUME_STATE if k not in ck]
    if missing:
        raise ConfigError(f"{last}: holds weights but no training state ('{missing[0]}' missing: a best.pt, a "
                          "copied checkpoint, or a last.pt of an earlier nas-recon?); --resume needs the last.pt "
                          "this version's retrain wrote, or use another --out")
    try:  # on a copy of the network: Lightning restores the real one
        probe = copy.deepcopy(net)
        probe.load_state_dict(ck["state_dict"])
        opt = make_optimizer(run, probe)
        opt.load_state_dict(ck["lightning"]["optimizer_states"][0])
        make_scheduler(run.cfg.recipe, opt).load_state_dict(ck["scheduler"])
        if not isinstance(ck["rng"], torch.Tensor):
            raise TypeError("'rng' is not a tensor")
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
        raise ConfigError(f"{last}: its training state does not fit this run ({str(e).splitlines()[0][:100]}); "
                          "use another --out") from None
    return ck


def _train(cfg: RetrainConfig, spec: ModelSpec, device: torch.device, ds: SliceDataset, val: SliceDataset,
           out: Path, resume: bool, progress: RetrainProgress, loss_fn: Any, world: World = ALONE,
           encoder: Sequence[str] = ()) -> dict[str, Any]:
    """run_retrain inside the run folder's lock (rank 0) or beside it (other ranks): the engine's Trainer fits a
    RetrainTask."""
    r = cfg.recipe
    life = Run(RECORD, out, resume, world)
    life.check_new()
    configure()
    torch.manual_seed(cfg.seed)
    net = place(build_model(spec), device)
    meta = {"model": spec.to_dict(), "recipe": r.to_dict(),
            "data": data_record(cfg.data, ("train", "val")), "seed": cfg.seed, "size": cfg.size,
            "precision": cfg.precision, "coils": ds.coils, "maps": ds.coil_maps_of.method if ds.coils else None,
            "params": count_params(net),
            "genotype_file": cfg.genotype, "genotype_extra": genotype_extra(cfg.genotype),
            **({"init": str(cfg.init)} if cfg.init else {}),
            **({"init_freeze": cfg.init_freeze} if cfg.init_freeze else {}),
            **({"coil_estimator": cfg.coil_estimator} if ds.coils else {})}
    common = {"model": spec.to_dict(), "recipe": r.to_dict(), "seed": cfg.seed,
              "data": {"size": cfg.size, "input_max": INPUT_MAX, "folder": str(cfg.data), "coils": ds.coils,
                       **({"coil_estimator": ds.coil_maps_of.name} if ds.coils else {})}}
    sampler = ShardedBatches(EpochSampler(len(ds), cfg.seed), r.batch_size, world)  # global batches, split
    loader = DataLoader(ds, batch_sampler=sampler)
    run = RetrainRun(cfg, device, life, ds, val, sampler, DataLoader(val, r.batch_size), loss_fn, common,
                     Board(out, enabled=False), progress)
    history: list[dict[str, Any]] = []
    start, best_psnr, ckpt = 0, -math.inf, life.resume_from()
    if ckpt is not None:
        life.check_resume(meta)
        ck = check_resumable(ckpt, spec, run, net)
        start, best_psnr, history = ck["epoch"], ck["best_psnr"], ck["history"]
    elif cfg.init is not None:  # a fresh run fine-tunes the pretrained encoder (a resumed one restores its weights)
        from nas_recon.train.pretrain import load_pretrained

        load_pretrained(cfg.init, spec, net)
    life.write_record(meta)
    run.board = life.board()  # TensorBoard events when tensorboard is installed (the CSV stays)
    stop = cfg.stop_epoch or r.epochs
    progress.start(stop, len(loader), start)
    if not history:  # the learning curve starts at the untrained model (step 0)
        metrics = (validate(net, run.val_loader, device, cfg.precision, world) if cfg.validate == "every"
                   else {"psnr": "", "ssim": ""})
        history.append({"epoch": 0, "train_loss": "", "val_psnr": metrics.get("psnr", ""),
                        "val_ssim": metrics.get("ssim", ""), "lr": r.lr, "seconds": 0.0, "step": 0, "wall_seconds": 0.0,
                        **({"val_loss": metrics.get("loss", "")} if run.ssdu else {})})
    task = RetrainTask(run, net, history, best_psnr, encoder if cfg.init_freeze else ())
    trainer = life.trainer(device, stop, cfg.precision, [StepReport(
        lambda epoch, step: progress.step(epoch, step, task.last_loss))])
    try:
        life.fit(trainer, task, loader, ckpt)
    finally:
        run.board.close()
    return {"run_dir": out, "history": task.history, "best_psnr": task.best_psnr, "params": count_params(net),
            "spec": spec, "config": {**asdict(cfg), "recipe": r.to_dict()}}
