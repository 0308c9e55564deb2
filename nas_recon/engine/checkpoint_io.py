"""Lightning checkpoints kept as nas-recon checkpoints: the network's weights, spec and history at the top level
(what evaluate, export and the report read, with the weights' sha256), Lightning's loop and optimiser state under
"lightning" (what a resume needs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytorch_lightning.plugins.io import CheckpointIO

from nas_recon.engine.checkpoint import read_checkpoint, save_checkpoint

EXTRA = "nas_recon"  # the key a LightningModule's on_save_checkpoint fills with the run's own fields


class RunCheckpointIO(CheckpointIO):
    """Writes (atomically, with a digest) and reads checkpoints whose LightningModule holds its network as `net`."""

    prefix = "net."

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        ck = dict(checkpoint)
        extra, weights = ck.pop(EXTRA), ck.pop("state_dict")
        odd = [k for k in weights if not k.startswith(self.prefix)]
        if odd:
            raise ValueError(f"checkpoint: module state '{odd[0]}' lies outside the network ('{self.prefix}')")
        net = {k.removeprefix(self.prefix): v for k, v in weights.items()}
        save_checkpoint(Path(path), {**extra, "state_dict": net, "lightning": ck})

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
                        ) -> dict[str, Any]:
        ck = read_checkpoint(Path(path))
        own = {k: v for k, v in ck.items() if k not in ("lightning", "state_dict")}
        return {**ck["lightning"], "state_dict": {self.prefix + k: v for k, v in ck["state_dict"].items()},
                EXTRA: own}

    def remove_checkpoint(self, path: str | Path) -> None:
        Path(path).unlink(missing_ok=True)
