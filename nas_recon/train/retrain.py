"""Retraining from scratch (searched nets and baselines alike) under one recipe, resumable."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from nas_recon import __version__
from nas_recon.data.dataset import INPUT_MAX, SliceDataset
from nas_recon.data.identity import data_record, describe_data, same_data
from nas_recon.data.sampler import EpochSampler
from nas_recon.defaults import SIZE
from nas_recon.device import place, resolve_device
from nas_recon.errors import ConfigError, DataError, NasReconError
from nas_recon.evaluate import unscaled_magnitudes
from nas_recon.genotype import load_genotype
from nas_recon.io import atomic_write_text, write_csv
from nas_recon.memory import NETWORK_BYTES_PER_PIXEL, check_fits, check_model_fits
from nas_recon.metrics import slice_metrics
from nas_recon.models.init import layer_lr_groups
from nas_recon.models.registry import CLASSICAL, ModelSpec, build_model, count_params, spec_for_genotype
from nas_recon.outputs import read_run_record
from nas_recon.physics.fft import chan_to_complex
from nas_recon.physics.masks import MaskSpec
from nas_recon.runtime import configure
from nas_recon.train.checkpoint import read_checkpoint, save_checkpoint
from nas_recon.train.dist import (
    ALONE,
    ShardedBatches,
    World,
    gather_rows,
    mean_over_ranks,
    on_main,
    run_on_ranks,
)
from nas_recon.train.losses import parse_loss
from nas_recon.train.precision import autocast, check_precision, grad_scaler
from nas_recon.train.recipe import Recipe, check_recipe_size, for_model
from nas_recon.train.tblog import Board


@dataclass
class RetrainConfig:
    """A retraining run: what model, what data, which recipe (with overrides applied)."""

    data: str
    out: str
    recipe: Recipe
    model: str | None = None
    genotype: str | None = None
    seed: int = 0
    device: str = "auto"
    size: int = SIZE
    precision: str = "32"  # 32, bf16-mixed or 16-mixed (nas_recon.train.precision)


class RetrainProgress:
    """Hooks the CLI implements (library code never prints)."""

    def start(self, epochs: int, steps: int, start_epoch: int) -> None: ...

    def step(self, epoch: int, step: int, loss: float) -> None: ...

    def epoch_end(self, row: dict[str, Any]) -> None: ...


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
    if cfg.genotype is not None:
        return spec_for_genotype(load_genotype(cfg.genotype))
    if cfg.model in CLASSICAL or cfg.model == "zero-filled":
        raise ConfigError(f"--model: '{cfg.model}' has nothing to train (use nas-recon evaluate --model {cfg.model})")
    spec = ModelSpec(cfg.model)
    build_model(spec)  # validates the name
    return spec


def genotype_extra(path: str | None) -> dict[str, Any]:
    """Provenance kept from a genotype file (how it was found or sampled)."""
    if path is None:
        return {}
    extra = load_genotype(path).extra
    keep = ("sampled", "search", "seed", "stopped_early", "epochs_run", "decided", "final_margin")
    return {k: extra[k] for k in keep if k in extra}


@torch.no_grad()
def validate(model: torch.nn.Module, loader: DataLoader, device: torch.device,
             precision: str = "32", world: World = ALONE) -> dict[str, float]:
    """Mean PSNR/SSIM on magnitudes (original units) with the fixed evaluation masks (no autograd graph).

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
            out = model(b.input.to(device), b.kspace.to(device), b.mask.to(device))
        out = out.float().cpu()
        for i, (gt, pred) in enumerate(unscaled_magnitudes(out, b)):
            rows.append((idx[i], {**slice_metrics(gt, pred, float(b.max_value[i])), "acc": float(b.acceleration[i])}))
    model.train()
    every = gather_rows(world, rows)
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
        out = model(b.input.to(device), b.kspace.to(device), b.mask.to(device))
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
    loss_fn = parse_loss(r.loss)
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device.type)
    train_dir, val_dir = data_folders(cfg.data)
    masks = MaskSpec(r.mask_type, tuple(r.accelerations))
    ds = SliceDataset(train_dir, cfg.size, r.crop or None, masks, "train", cfg.seed, r.max_slices or None,
                      repeats=r.repeats)
    val = SliceDataset(val_dir, cfg.size, r.val_crop or None, masks, "eval", cfg.seed, r.val_max_slices or None)
    side = r.crop or cfg.size
    check_fits("retrain", r.batch_size, side, side, NETWORK_BYTES_PER_PIXEL, device,
               "use a smaller crop (--crop) or --batch-size")
    check_model_fits("retrain", spec, r.batch_size, side, side, device, True,
                     "use a smaller model, crop (--crop) or --batch-size")
    out = Path(cfg.out)
    return run_on_ranks(r.batch_size, device, out, "retrain", lambda world, dev: _train(
        cfg, spec, dev, ds, val, out, resume, progress if world.main else RetrainProgress(), loss_fn, world))


FIXED_ON_RESUME = ("model", "recipe", "data", "seed", "size", "precision")
RECORD_DEFAULTS = {"precision": "32"}  # what a run.json written before the key existed meant
RESUME_STATE = ("optimizer", "scheduler", "rng", "epoch", "best_psnr", "history")  # what last.pt adds to weights


def check_new_run(out: Path, resume: bool) -> None:
    """Refuse to start a run over the one already in `out` (its last.pt) unless resuming it."""
    if (out / "last.pt").exists() and not resume:
        raise ConfigError(f"{out}: a retrain run is already there (use --resume, or another --out)")


def check_resume(out: Path, meta: dict[str, Any]) -> None:
    """Refuse --resume when a setting that shaped the earlier epochs changed (run.json would misdescribe them)."""
    path = out / "run.json"
    saved = read_run_record(path, "retrain")
    for key in FIXED_ON_RESUME:
        old, new = saved.get(key, RECORD_DEFAULTS.get(key)), meta[key]
        if key == "data":  # known by content: ./data, an absolute path and a symlink to it are the same data
            if not same_data(old, new):
                raise ConfigError(f"--resume: the data is not what this run trained on (was {describe_data(old)}, now "
                                  f"{describe_data(new)}; from {path}); resume on the same data or use another --out")
            continue
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):  # name the changed sub-key
            sub = next(k for k in sorted({*old, *new}) if old.get(k) != new.get(k))
            key, old, new = f"{key}.{sub}", old.get(sub), new.get(sub)
        raise ConfigError(f"--resume: setting '{key}' was {old!r}, now {new!r} (from {path}); "
                          "resume with the same settings or use another --out")


def _train(cfg: RetrainConfig, spec: ModelSpec, device: torch.device, ds: SliceDataset, val: SliceDataset,
           out: Path, resume: bool, progress: RetrainProgress, loss_fn: Any, world: World = ALONE) -> dict[str, Any]:
    """The training loop of run_retrain, inside the run folder's lock (rank 0) or beside it (other ranks)."""
    r = cfg.recipe
    last, best = out / "last.pt", out / "best.pt"
    on_main(world, lambda: check_new_run(out, resume))
    configure()
    torch.manual_seed(cfg.seed)
    model = place(build_model(spec), device)
    # cell networks (searched and random cells) get per-conv learning rates scaled by their init std
    params = layer_lr_groups(model, r.lr) if r.layer_lr and spec.name == "searched" else model.parameters()
    opt = torch.optim.Adam(params, lr=r.lr)
    drop = max(1, math.ceil(r.epochs * r.lr_drop - 1e-9))  # 'first half' rounds up
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[drop], gamma=r.lr_after / r.lr)
    history: list[dict[str, Any]] = []
    start, best_psnr = 0, -math.inf
    meta = {"kind": "retrain", "version": __version__, "model": spec.to_dict(), "recipe": r.to_dict(),
            "data": data_record(cfg.data, ("train", "val")), "seed": cfg.seed, "size": cfg.size,
            "precision": cfg.precision,
            "params": count_params(model),
            "genotype_file": cfg.genotype, "genotype_extra": genotype_extra(cfg.genotype)}
    if resume and last.exists():
        on_main(world, lambda: check_resume(out, meta))
        ck = read_checkpoint(last)
        if ck["model"] != spec.to_dict():
            raise ConfigError(f"{last}: checkpoint holds another model than {spec.name} ({ck['model']!r})")
        missing = [k for k in RESUME_STATE if k not in ck]
        if missing:
            raise ConfigError(f"{last}: holds weights but no training state ('{missing[0]}' missing: a best.pt or "
                              "a copied checkpoint?); --resume needs the last.pt a retrain wrote, or use another --out")
        try:
            model.load_state_dict(ck["state_dict"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            torch.set_rng_state(ck["rng"])
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{last}: its training state does not fit this run ({str(e).splitlines()[0][:100]}); "
                              "use another --out") from None
        start, best_psnr, history = ck["epoch"], ck["best_psnr"], ck["history"]
    if world.main:
        atomic_write_text(out / "run.json", json.dumps(meta, indent=1))
    net = model  # what is saved and validated; `model` computes the training steps (DDP-wrapped across ranks)
    if world.distributed:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda"
                                                          else None)

    sampler = ShardedBatches(EpochSampler(len(ds), cfg.seed), r.batch_size, world)  # global batches, split
    loader = DataLoader(ds, batch_sampler=sampler)
    val_loader = DataLoader(val, r.batch_size)
    common = {"model": spec.to_dict(), "recipe": r.to_dict(), "seed": cfg.seed,
              "data": {"size": cfg.size, "input_max": INPUT_MAX, "folder": str(cfg.data)}}
    progress.start(r.epochs, len(loader), start)
    scaler = grad_scaler(cfg.precision, device.type)
    board = Board(out, enabled=world.main)  # TensorBoard events when tensorboard is installed (the CSV stays)
    if not history:  # the learning curve starts at the untrained model (step 0)
        metrics = validate(net, val_loader, device, cfg.precision, world)
        history.append({"epoch": 0, "train_loss": "", "val_psnr": metrics["psnr"], "val_ssim": metrics["ssim"],
                        "lr": r.lr, "seconds": 0.0, "step": 0, "wall_seconds": 0.0})
    model.train()
    for epoch in range(start, r.epochs):
        ds.set_epoch(epoch)
        sampler.set_epoch(epoch)
        t0, total, n = time.time(), 0.0, 0
        for step, b in enumerate(loader):
            with autocast(cfg.precision, device.type):
                pred = model(b.input.to(device), b.kspace.to(device), b.mask.to(device))
            loss = loss_fn(pred.float(), b.target.to(device))  # the loss in float32, as the fusion
            if world.distributed:  # this rank's share, weighted: DDP's gradient mean = the global batch's
                loss = loss * sampler.factors[step]
            batch_loss = mean_over_ranks(world, loss)  # the global batch's loss, the same on every rank
            if not torch.isfinite(batch_loss):
                raise NasReconError(
                    f"loss became {float(batch_loss)} at epoch {epoch + 1} step {step + 1}; stopped, "
                    f"the last good checkpoint is {last if last.exists() else 'none (first epoch)'}"
                )
            opt.zero_grad()
            if scaler is None:
                loss.backward()
                opt.step()
            else:  # float16: scaled gradients, steps skipped on overflow
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            total += float(batch_loss)
            n += 1
            progress.step(epoch, step + 1, float(batch_loss))
        g = opt.param_groups[0]
        lr = r.lr * g["lr"] / g["initial_lr"]  # the recipe's lr at this epoch (groups may scale it)
        sched.step()
        metrics = validate(net, val_loader, device, cfg.precision, world)
        seconds = round(time.time() - t0, 3)
        row = {"epoch": epoch + 1, "train_loss": total / max(1, n), "val_psnr": metrics["psnr"],
               "val_ssim": metrics["ssim"], "lr": lr, "seconds": seconds, "step": history[-1]["step"] + n,
               "wall_seconds": round(history[-1]["wall_seconds"] + seconds, 3)}
        history.append(row)
        improved = metrics["psnr"] > best_psnr
        best_psnr = max(best_psnr, metrics["psnr"])
        if not world.main:
            continue
        if improved:
            save_checkpoint(best, {**common, "state_dict": net.state_dict(), "epoch": epoch + 1,
                                   "val": metrics})
        save_checkpoint(last, {**common, "state_dict": net.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "rng": torch.get_rng_state(),
                               "epoch": epoch + 1, "best_psnr": best_psnr, "history": history})
        write_csv(out / "train_log.csv", history)
        board.scalars({"loss/train": row["train_loss"], "val/psnr": row["val_psnr"], "val/ssim": row["val_ssim"],
                       "lr": lr, **{f"val/{k}": v for k, v in metrics.items() if k.endswith("x")}}, row["step"])
        if board.active:  # an extra forward pass: only when it is written
            board.image("val/zero-filled|output|target|error", val_panels(net, val, device, cfg.precision),
                        row["step"])
        progress.epoch_end(row)
    board.close()
    return {"run_dir": out, "history": history, "best_psnr": best_psnr, "params": count_params(net),
            "spec": spec, "config": {**asdict(cfg), "recipe": r.to_dict()}}
