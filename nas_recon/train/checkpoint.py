"""Self-describing checkpoints: the model spec, weights, optimiser state, data scaling, history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas_recon import __version__
from nas_recon.errors import ConfigError
from nas_recon.io import atomic_path
from nas_recon.models.registry import ModelSpec, build_model

FORMAT = "nas-recon-checkpoint"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """torch.save to a temp file in the same folder, then rename (never half-written)."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": 1, "package_version": __version__, **payload}, tmp)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load and check a checkpoint file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for damaged files
        raise ConfigError(f"{path}: checkpoint is corrupt or not a torch file ({str(e).splitlines()[0][:120]})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a nas-recon checkpoint (field 'format' missing or wrong)")
    if "model" not in ckpt or "state_dict" not in ckpt:
        raise ConfigError(f"{path}: checkpoint lacks 'model' or 'state_dict'")
    return ckpt


def model_from_checkpoint(path: Path, expect: ModelSpec | None = None) -> tuple[nn.Module, ModelSpec, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights."""
    ckpt = read_checkpoint(path)
    spec = ModelSpec.from_dict(ckpt["model"])
    if expect is not None and (spec.name != expect.name or spec.genotype != expect.genotype):
        raise ConfigError(f"{path}: checkpoint is of model '{spec.name}', not '{expect.name}'")
    model = build_model(spec)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise ConfigError(f"{path}: weights do not fit model '{spec.name}' ({str(e).splitlines()[0][:120]})") from e
    return model, spec, ckpt
