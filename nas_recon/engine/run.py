"""A run's life in its folder, the same for every kind (search, retrain, pretrain, the selection's trials): the
folder's record and resume rule, the one checkpoint format and where it lies, the Trainer that writes it, the logs
rank 0 alone writes, the divergence stop. A command supplies its task (a LightningModule) and its settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from nas_recon.engine.dist import ALONE, World, on_main
from nas_recon.engine.record import RunRecord
from nas_recon.engine.tblog import Board
from nas_recon.engine.trainer import build_trainer, fit
from nas_recon.errors import Diverged
from nas_recon.io import write_csv

T = TypeVar("T")


@dataclass
class Run:
    """One run of a kind (`record`) in `out`, fresh or resumed, on this rank of `world`."""

    record: RunRecord
    out: Path
    resume: bool = False
    world: World = ALONE

    def __post_init__(self) -> None:
        self.out = Path(self.out)

    @property
    def checkpoint(self) -> Path:
        """OUT/last.pt: the last state, rewritten at every epoch's end."""
        return self.record.checkpoint(self.out)

    def on_main(self, check: Callable[[], T]) -> T:
        """`check()` on rank 0 alone (the folder's checks), its result or its ConfigError on every rank."""
        return on_main(self.world, check)

    def check_new(self, marker: Path | None = None) -> None:
        """Refuse to start over a run already in the folder unless resuming it (nothing written)."""
        self.on_main(lambda: self.record.check_new(self.out, self.resume, marker))

    def resume_from(self) -> Path | None:
        """The checkpoint this call continues from (None: a fresh run, or nothing to resume)."""
        return self.record.resumable(self.out) if self.resume else None

    def check_resume(self, now: dict[str, Any], saved: dict[str, Any] | None = None) -> None:
        """Refuse a resume whose fixed settings changed (rank 0 reads the record)."""
        self.on_main(lambda: self.record.check_resume(self.out, now, saved))

    def write_record(self, meta: dict[str, Any]) -> None:
        """run.json (rank 0), once every check has passed."""
        if self.world.main:
            self.record.write(self.out, meta)

    def trainer(self, device: torch.device, epochs: int, precision: str, callbacks: Sequence[Callback],
                grad_clip: float | None = None) -> pl.Trainer:
        """The engine's Trainer, writing this kind's checkpoints in the one format."""
        return build_trainer(device, epochs, precision, self.out, callbacks, grad_clip, self.record.checkpoint_io())

    def fit(self, trainer: pl.Trainer, task: pl.LightningModule, loaders: Any, ckpt: Path | None) -> None:
        """Train `task` (resuming from `ckpt`); Ctrl-C and SIGTERM leave the last checkpoint to resume from."""
        fit(trainer, task, loaders, ckpt)

    def save(self, trainer: pl.Trainer) -> None:
        """last.pt from inside an epoch's end (rank 0), the task's and callbacks' own fields included."""
        if self.world.main:
            trainer.save_checkpoint(self.checkpoint)

    def log(self, name: str, rows: list[dict[str, Any]]) -> None:
        """A CSV of the epochs so far in the folder (rank 0), rewritten whole."""
        if self.world.main:
            write_csv(self.out / name, rows)

    def board(self) -> Board:
        """TensorBoard events under OUT/tensorboard (rank 0, when tensorboard is installed; the CSVs stay)."""
        return Board(self.out, enabled=self.world.main)

    def diverged(self, what: str, hint: str = "") -> Diverged:
        """The stop of a diverged run: what happened, and the checkpoint it can go back to."""
        good = self.checkpoint if self.checkpoint.is_file() else "none (first epoch)"
        return Diverged(f"{what}; stopped, the last good checkpoint is {good}{f' ({hint})' if hint else ''}")
