"""Self-describing checkpoints: the model spec, weights, optimiser state, data scaling, history."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas_recon import __version__
from nas_recon.errors import ConfigError
from nas_recon.io import atomic_path
from nas_recon.models.registry import ModelSpec, build_model

FORMAT = "nas-recon-checkpoint"


def state_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a state dict's tensors (detects damaged weights)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16; its bits are an int16
            t = t.view(torch.int16)
        h.update(t.numpy().tobytes())  # C order whatever the memory format (channels_last weights)
    return h.hexdigest()


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """torch.save to a temp file in the same folder, then rename (never half-written); weights carry a sha256."""
    digest = state_digest(payload["state_dict"])
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": 1, "package_version": __version__, "sha256": digest, **payload}, tmp)


def damage(path: Path, error: BaseException) -> str:
    """Why torch.load failed on PATH, in words (torch's own messages speak of miniz and errno 22)."""
    import zipfile

    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        return f"checkpoint cannot be read ({e.strerror or e})"
    if size == 0:
        return "checkpoint is an empty file"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, OSError, EOFError):
            return f"checkpoint is truncated or damaged (its archive is incomplete, {size:,} bytes)"
        if bad is not None:
            return f"checkpoint is damaged (entry {bad} fails its CRC)"
    elif head[:1] != b"\x80":
        return "not a torch checkpoint (no torch archive or pickle header)"
    return f"checkpoint is corrupt ({str(error).splitlines()[0][:100]})"


def load_file(path: Path) -> Any:
    """torch.load of a checkpoint file on the CPU; one line naming the damage in words when it fails."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for damaged files
        raise ConfigError(f"{path}: {damage(path, e)}") from e


def check_checkpoint(path: Path, ckpt: Any) -> dict[str, Any]:
    """A loaded checkpoint checked: nas-recon's format, a model and its weights (sha256 when stored)."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a nas-recon checkpoint (field 'format' missing or wrong)")
    if "model" not in ckpt or "state_dict" not in ckpt:
        raise ConfigError(f"{path}: checkpoint lacks 'model' or 'state_dict'")
    if not isinstance(ckpt["model"], dict) or not isinstance(ckpt["state_dict"], dict):
        raise ConfigError(f"{path}: checkpoint fields 'model' and 'state_dict' must be mappings")
    if not all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values()):
        raise ConfigError(f"{path}: checkpoint 'state_dict' holds values that are not tensors")
    if "sha256" in ckpt and ckpt["sha256"] != state_digest(ckpt["state_dict"]):
        raise ConfigError(f"{path}: checkpoint weights are damaged (sha256 does not match the one stored)")
    return ckpt


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load and check a checkpoint file."""
    return check_checkpoint(Path(path), load_file(path))


def check_kind(path: Path, ckpt: dict[str, Any], kind: str) -> None:
    """Refuse a run checkpoint of another kind of run (one written before kinds were recorded is a retrain's)."""
    held = ckpt.get("kind", "retrain")
    if held != kind:
        raise ConfigError(f"{path}: a {held} checkpoint, not a {kind} one")


def model_from_checkpoint(path: Path, expect: ModelSpec | None = None) -> tuple[nn.Module, ModelSpec, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights."""
    ckpt = read_checkpoint(path)
    try:
        spec = ModelSpec.from_dict(ckpt["model"])
        model = build_model(spec)
    except ConfigError as e:
        raise ConfigError(f"{path}: the checkpoint's {str(e).removeprefix('--')}") from None
    if expect is not None and (spec.name != expect.name or spec.genotype != expect.genotype):
        raise ConfigError(f"{path}: checkpoint holds model '{spec.name}' of another architecture than expected "
                          f"('{expect.name}')")
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise ConfigError(f"{path}: weights do not fit model '{spec.name}' ({str(e).splitlines()[0][:120]})") from e
    return model, spec, ckpt
