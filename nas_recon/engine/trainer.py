"""The one place Lightning Trainers are built and run, for search and retrain alike.

Several ranks (torchrun, `--devices N`): each rank drives its own single-device Trainer inside the process group
the run already joined (`single_process_view`); the commands keep the ranks in step themselves (DDP's gradient
all-reduce in retrain, averaging hooks in search, whose two backward passes a step DDP's wrapper cannot take).
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.plugins.io import CheckpointIO

from nas_recon.engine.dist import single_process_view

for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.ERROR)


EXPLODED = 100.0  # a loss this many times the untrained network's has diverged (as a NaN has), finite or not


def exploded(loss: float, first: float) -> bool:
    """True when a loss grew far past the untrained network's (`first`: its first training loss)."""
    return math.isfinite(first) and first > 0 and loss > EXPLODED * first


class StepReport(Callback):
    """`report(epoch, step)` after every training batch (the CLI's rich progress bar; nothing in the library)."""

    def __init__(self, report: Callable[[int, int], None]) -> None:
        self.report = report

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.report(trainer.current_epoch, batch_idx + 1)


def build_trainer(device: torch.device, epochs: int, precision: str, out: str | Path, callbacks: Sequence[Callback],
                  grad_clip: float | None = None, checkpoint_io: CheckpointIO | None = None) -> pl.Trainer:
    """A Trainer on `device` for `epochs` in `precision` (32, bf16-mixed, 16-mixed: autocast and, for float16, a
    gradient scaler); no logger or progress bar of Lightning's (the run folder's CSV, TensorBoard and the CLI's
    rich bar stand in); Lightning checkpoints only through a ModelCheckpoint among `callbacks`."""
    with single_process_view():
        return pl.Trainer(
            max_epochs=epochs, accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=[device.index] if device.type == "cuda" and device.index is not None else 1,
            precision=precision,  # type: ignore[arg-type]
            logger=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
            limit_val_batches=0, callbacks=list(callbacks), default_root_dir=str(out),
            enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
            gradient_clip_val=grad_clip, plugins=[checkpoint_io] if checkpoint_io is not None else None,
            use_distributed_sampler=False,  # the commands' samplers shard by rank without changing the draws
        )


def fit(trainer: pl.Trainer, module: pl.LightningModule, loaders: Any, ckpt_path: str | Path | None) -> None:
    """`trainer.fit` (resuming from `ckpt_path`), its warnings silenced; Ctrl-C or SIGTERM raise KeyboardInterrupt
    (Lightning turns them into SystemExit) and the caller's SIGINT handler is put back (Lightning ignores SIGINT
    after an interrupt)."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    try:
        with warnings.catch_warnings(), single_process_view():
            warnings.simplefilter("ignore")
            try:
                trainer.fit(module, train_dataloaders=loaders, ckpt_path=str(ckpt_path) if ckpt_path else None)
            except SystemExit:
                if trainer.interrupted:
                    raise KeyboardInterrupt from None
                raise
    finally:
        if main and previous is not None:
            signal.signal(signal.SIGINT, previous)
    if trainer.interrupted:
        raise KeyboardInterrupt
