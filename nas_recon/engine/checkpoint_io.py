"""One checkpoint format for every run (search, retrain, pretrain): Lightning's checkpoints kept as nas-recon
checkpoints. The run's kind, its network's weights, spec and history at the top level (what evaluate, export and the
report read, with the weights' sha256), Lightning's loop and optimiser state under "lightning" (what a resume
needs). The Lightning files an earlier nas-recon wrote for search and pretrain still load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytorch_lightning.plugins.io import CheckpointIO

from nas_recon.engine.checkpoint import FORMAT, check_checkpoint, check_kind, load_file, save_checkpoint
from nas_recon.errors import ConfigError

EXTRA = "nas_recon"  # the key a LightningModule's (or callback's) on_save_checkpoint fills with the run's own fields
LIGHTNING = ("state_dict", "loops", "optimizer_states", "pytorch-lightning_version")  # Lightning's own format


class RunCheckpointIO(CheckpointIO):
    """Writes (atomically, with a digest) and reads the checkpoints of one kind of run, whose LightningModule holds
    everything it trains under `prefix` (a retrain's `net.`, a search's NNI module `training_module.`)."""

    def __init__(self, kind: str = "retrain", prefix: str = "net.") -> None:
        super().__init__()
        self.kind, self.prefix = kind, prefix

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        ck = dict(checkpoint)
        extra, weights = ck.pop(EXTRA, {}), ck.pop("state_dict")
        odd = [k for k in weights if not k.startswith(self.prefix)]
        if odd:
            raise ValueError(f"checkpoint: module state '{odd[0]}' lies outside the network ('{self.prefix}')")
        net = {k.removeprefix(self.prefix): v for k, v in weights.items()}
        save_checkpoint(Path(path), {"kind": self.kind, **extra, "state_dict": net, "lightning": ck})

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
                        ) -> dict[str, Any]:
        path = Path(path)
        raw = load_file(path)
        if isinstance(raw, dict) and raw.get("format") != FORMAT and all(k in raw for k in LIGHTNING):
            return raw  # Lightning's own file, as an earlier nas-recon's search or pretrain wrote it
        ck = check_checkpoint(path, raw)
        check_kind(path, ck, self.kind)
        if not isinstance(ck.get("lightning"), dict):
            raise ConfigError(f"{path}: holds weights but no training state (a best.pt, or a copied checkpoint?)")
        own = {k: v for k, v in ck.items() if k not in ("lightning", "state_dict")}
        return {**ck["lightning"], "state_dict": {self.prefix + k: v for k, v in ck["state_dict"].items()},
                EXTRA: own}

    def remove_checkpoint(self, path: str | Path) -> None:
        Path(path).unlink(missing_ok=True)
