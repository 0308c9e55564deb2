"""Contrastive pretraining of an image network's encoder (Self-MRI's SimCLR): two views of each training slice
(two undersampling masks of its k-space, random crops and horizontal flips), the bottleneck features pooled and
projected, SimCLR's NT-Xent between the views; no reference is read. `retrain --init` fine-tunes from it."""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from nas_recon.data.dataset import SliceDataset
from nas_recon.data.identity import data_record
from nas_recon.data.sample import Sample
from nas_recon.data.sampler import EpochSampler
from nas_recon.data.ssdu import SsduSplit
from nas_recon.device import place, resolve_device
from nas_recon.engine.checkpoint import read_checkpoint, save_checkpoint
from nas_recon.engine.checkpoint_io import EXTRA
from nas_recon.engine.progress import RunProgress
from nas_recon.engine.record import RunRecord
from nas_recon.engine.run import Run
from nas_recon.engine.trainer import StepReport
from nas_recon.errors import ConfigError, DataError
from nas_recon.lock import run_lock
from nas_recon.models.encoders import encoder_of
from nas_recon.models.registry import ModelSpec, build_model
from nas_recon.physics.masks import MaskSpec
from nas_recon.runtime import configure
from nas_recon.train.config import PretrainConfig

PRETRAINED = "encoder.pt"  # what a pretraining run leaves for retrain --init
FIXED_ON_RESUME = ("model", "data", "seed", "size", "crop", "batch_size", "temperature", "lr", "epochs", "rho")
# the task holds the network and its projection head as `model`; before the one checkpoint format a pretraining kept
# Lightning's last.ckpt
RECORD = RunRecord("pretrain", FIXED_ON_RESUME, noun="pretraining", prefix="model.", legacy=("last.ckpt",))


PretrainProgress = RunProgress  # the engine's hooks


def flip(s: Sample, on: bool) -> Sample:
    """A view mirrored left-right (its image, k-space, mask and maps together) when `on`."""
    if not on:
        return s
    f = {k: getattr(s, k).flip(-1) for k in ("input", "target", "kspace", "mask")}
    if s.maps.numel():
        f["maps"] = s.maps.flip(-1)
    return s._replace(**f)


class ContrastiveViews(Dataset):
    """Pairs of views of each slice: the same slice drawn by two datasets of different seeds (other masks or
    Theta splits, other crops), each view flipped with probability 1/2 from the (seed, epoch, index) generator."""

    def __init__(self, a: SliceDataset, b: SliceDataset, seed: int) -> None:
        self.a, self.b, self.seed, self.epoch = a, b, seed, 0

    def __len__(self) -> int:
        return len(self.a)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.a.set_epoch(epoch)
        self.b.set_epoch(epoch)

    def __getitem__(self, i: int) -> tuple[Sample, Sample]:
        flips = np.random.default_rng([self.seed, self.epoch, i, 977]).integers(0, 2, size=2)
        return flip(self.a[i], bool(flips[0])), flip(self.b[i], bool(flips[1]))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent: each view's positive is the other view of its slice, the other 2N - 2 views its negatives."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


GRID = 4  # the bottleneck is average-pooled to GRID x GRID cells, not to one: its instance norms make every
#           channel's global mean the same for all images (measured: a global pool left NT-Xent at chance, ln(2N - 1))
HIDDEN = 512


class Contrastive(nn.Module):
    """A network, its encoder's output caught by a hook, average-pooled to a GRID x GRID grid and projected by
    SimCLR's two-layer head."""

    def __init__(self, net: nn.Module, encoder: nn.Module, channels: int, dim: int = 128) -> None:
        super().__init__()
        self.net = net
        self.head = nn.Sequential(nn.Linear(channels * GRID * GRID, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, dim))
        self._caught: list[torch.Tensor] = []
        encoder.register_forward_hook(lambda m, i, o: self._caught.append(o))

    def forward(self, b: Sample) -> torch.Tensor:
        self._caught.clear()
        self.net(*b.inputs())
        return self.head(F.adaptive_avg_pool2d(self._caught[-1], GRID).flatten(1))


def bottleneck_width(net: nn.Module, encoder: nn.Module, side: int) -> int:
    """Channels of the encoder's output, from one forward pass on a blank image."""
    caught: list[torch.Tensor] = []
    handle = encoder.register_forward_hook(lambda m, i, o: caught.append(o))
    x = torch.zeros(1, 2, side, side)
    x[..., side // 2, side // 2] = 1.0
    with torch.no_grad():
        net(x, torch.zeros_like(x), torch.ones(1, 1, 1, side))
    handle.remove()
    return int(caught[-1].shape[1])


class PretrainTask(pl.LightningModule):
    """NT-Xent over the two views of each slice; pretrain_log.csv and last.pt at each epoch's end."""

    def __init__(self, model: Contrastive, cfg: PretrainConfig, life: Run, history: list[dict[str, Any]]) -> None:
        super().__init__()
        self.model, self.cfg, self.life, self.history = model, cfg, life, history
        self.total, self.n, self.t0, self.last_loss = 0.0, 0, time.time(), math.nan
        self.views: ContrastiveViews | None = None
        self.sampler: EpochSampler | None = None
        self.encoder_keys: list[str] = []

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr)

    def on_train_epoch_start(self) -> None:
        assert self.views is not None and self.sampler is not None
        self.views.set_epoch(self.current_epoch)
        self.sampler.set_epoch(self.current_epoch)
        self.total, self.n, self.t0 = 0.0, 0, time.time()

    def training_step(self, batch, step: int) -> torch.Tensor:
        a, b = batch
        loss = nt_xent(self.model(a), self.model(b), self.cfg.temperature)
        if not torch.isfinite(loss):
            raise DataError(f"pretrain: the contrastive loss became {float(loss)} at epoch {self.current_epoch + 1}; "
                            "lower --lr or raise --temperature")
        self.last_loss = float(loss)
        self.total += self.last_loss
        self.n += 1
        return loss

    def on_train_epoch_end(self) -> None:
        self.history.append({"epoch": self.current_epoch + 1, "loss": self.total / max(1, self.n),
                             "seconds": round(time.time() - self.t0, 3)})
        self.life.log("pretrain_log.csv", self.history)
        self.life.save(self.trainer)
        save_checkpoint(self.life.out / PRETRAINED, {
            "model": ModelSpec(self.cfg.model).to_dict(), "state_dict": self.model.net.state_dict(),
            "encoder_keys": self.encoder_keys, "pretrain": {**asdict(self.cfg), "epoch": self.current_epoch + 1}})

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[EXTRA] = {"model": ModelSpec(self.cfg.model).to_dict(), "epoch": self.current_epoch + 1,
                             "history": self.history}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:  # (an earlier nas-recon's: Lightning's keys)
        own = checkpoint.get(EXTRA)
        self.history[:] = own["history"] if own else checkpoint.get("nas_recon_history", [])


def trained_keys(net: nn.Module, name: str) -> list[str]:
    """The state-dict keys of the network's encoder path: every parameter and buffer the encoder's output depends
    on (what retrain --init loads; the decoder keeps its own initialisation)."""
    encoder = encoder_of(name, net)
    caught: list[torch.Tensor] = []
    handle = encoder.register_forward_hook(lambda m, i, o: caught.append(o))
    side = max(32, getattr(net, "min_size", 1))
    x = torch.rand(1, 2, side, side, generator=torch.Generator().manual_seed(0))
    was = net.training
    net.eval()  # the probe must not move running statistics (batch norms) before training
    params = dict(net.named_parameters())
    for p in params.values():
        p.grad = None
    net(x, torch.zeros_like(x), torch.ones(1, 1, 1, side))
    handle.remove()
    caught[-1].sum().backward()
    used = {k for k, p in params.items() if p.grad is not None}
    for p in params.values():
        p.grad = None
    net.train(was)
    return sorted(used)


def views_datasets(cfg: PretrainConfig) -> tuple[SliceDataset, SliceDataset]:
    """The two view datasets over DATA/train (undersampled files: Theta splits of their own masks; fully sampled:
    4x masks)."""
    train = Path(cfg.data) / "train"
    if not train.is_dir():
        raise DataError(f"{cfg.data}: no train/ subfolder (pretraining draws its views from DATA/train)")
    ssdu = SsduSplit(cfg.rho) if _undersampled(train) else None
    crop = min(cfg.crop, cfg.size)
    return tuple(SliceDataset(train, cfg.size, crop, MaskSpec("random", (4.0,)), "train", cfg.seed + k, ssdu=ssdu)
                 for k in (0, 1))  # type: ignore[return-value]


def _undersampled(folder: Path) -> bool:
    from nas_recon.data.dataset import list_volumes
    from nas_recon.data.hdf5 import inspect_volume

    return inspect_volume(list_volumes(folder)[0]).has_mask


def run_pretrain(cfg: PretrainConfig, resume: bool = False, progress: PretrainProgress | None = None
                 ) -> dict[str, Any]:
    """Pretrain the encoder of cfg.model contrastively; OUT/encoder.pt holds the network and its encoder's keys."""
    progress = progress or PretrainProgress()
    configure()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    net = build_model(ModelSpec(cfg.model))
    encoder = encoder_of(cfg.model, net)
    if cfg.crop < getattr(net, "min_size", 1):
        raise ConfigError(f"--crop: {cfg.crop} is smaller than {cfg.model}'s least image side {net.min_size}")
    a, b = views_datasets(cfg)
    out = Path(cfg.out)
    with run_lock(out, "pretrain"):
        life = Run(RECORD, out, resume)
        last = life.resume_from()
        meta = {"model": cfg.model,
                "data": data_record(cfg.data, ("train",)), **{k: getattr(cfg, k) for k in FIXED_ON_RESUME
                                                               if k not in ("model", "data")}}
        life.check_new()
        if last is not None:
            life.check_resume(meta)
        life.write_record(meta)
        keys = trained_keys(net, cfg.model)
        model = place(Contrastive(net, encoder, bottleneck_width(net, encoder, max(32, net.min_size))), device)
        views = ContrastiveViews(a, b, cfg.seed)
        sampler = EpochSampler(len(views), cfg.seed)
        loader = DataLoader(views, cfg.batch_size, sampler=sampler, drop_last=len(views) > cfg.batch_size)
        history: list[dict[str, Any]] = []
        task = PretrainTask(model, cfg, life, history)
        task.views, task.sampler, task.encoder_keys = views, sampler, keys
        progress.start(cfg.epochs, len(loader), 0)
        trainer = life.trainer(device, cfg.epochs, "32", [StepReport(
            lambda epoch, step: progress.step(epoch, step, task.last_loss))])
        life.fit(trainer, task, loader, last)
    return {"run_dir": out, "history": task.history, "encoder": out / PRETRAINED}


def load_pretrained(path: str | Path, spec: ModelSpec, net: nn.Module) -> list[str]:
    """Load a pretraining run's encoder weights (OUT/encoder.pt, or the file) into `net` of `spec`; the names of the
    tensors loaded. ConfigError when it holds another model or shape."""
    p = Path(path)
    p = p / PRETRAINED if p.is_dir() else p
    ck = read_checkpoint(p)
    if "encoder_keys" not in ck:
        raise ConfigError(f"--init {p}: not a pretraining checkpoint (no encoder keys); give the encoder.pt that "
                          "nas-recon pretrain wrote")
    held = ModelSpec.from_dict(ck["model"])
    if held.name != spec.name or held.channels != spec.channels:
        raise ConfigError(f"--init {p}: pretrained {held.name} at {held.channels} channels, this run trains "
                          f"{spec.name} at {spec.channels}; pretrain the same model")
    own = net.state_dict()
    keys = [k for k in ck["encoder_keys"] if k in ck["state_dict"]]
    bad = next((k for k in keys if k not in own or own[k].shape != ck["state_dict"][k].shape), None)
    if bad is not None:
        raise ConfigError(f"--init {p}: its tensor '{bad}' does not fit this network; pretrain the same model")
    net.load_state_dict({**own, **{k: ck["state_dict"][k] for k in keys}})
    return keys
