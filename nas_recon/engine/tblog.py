"""TensorBoard event files in the run folder, when the optional `tensorboard` package is installed.

The CSV logs stay the record the report reads; these are for watching a run. Without tensorboard every call is a
no-op (`pip install -e ".[tensorboard]"` adds it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


class Board:
    """A SummaryWriter under RUN/tensorboard, or nothing when tensorboard is missing or `enabled` is False."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.writer: Any = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # optional extra not installed
            return
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    @property
    def active(self) -> bool:
        """Whether anything is written (callers skip work whose only use is the board)."""
        return self.writer is not None

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Scalars by tag at `step` (non-numbers skipped)."""
        if self.writer is None:
            return
        for tag, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(tag, float(v), step)

    def image(self, tag: str, panels: list[torch.Tensor], step: int) -> None:
        """Magnitude images [H, W] side by side, each scaled to [0, 1] by the first one's max."""
        if self.writer is None:
            return
        top = float(panels[0].max()) or 1.0
        row = torch.cat([(p / top).clamp(0, 1) for p in panels], dim=-1)
        self.writer.add_image(tag, row.unsqueeze(0), step)

    def close(self) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
