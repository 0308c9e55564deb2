"""The progress hooks of every run (search, retrain, pretrain, a selection's trials): the CLI implements them with
rich; library code never prints."""

from __future__ import annotations

from typing import Any


class RunProgress:
    """Called by a run at its start, after each optimisation step and at each epoch's end (no-ops by default)."""

    def start(self, epochs: int, steps: int, start_epoch: int) -> None:
        """`epochs` in all, `steps` per epoch, resuming after `start_epoch`."""

    def step(self, epoch: int, step: int, loss: float, arch_loss: float | None = None) -> None:
        """A step's training loss (a search's weight step; `arch_loss`: its architecture step's, when bilevel)."""

    def epoch_end(self, row: dict[str, Any]) -> None:
        """The epoch's row of the run's CSV log."""
