"""Evaluation with fixed masks per (file, slice): per-slice, per-volume and aggregate metrics."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from nas_recon import __version__
from nas_recon.data.dataset import SliceDataset
from nas_recon.data.sample import Sample, unscaled_magnitudes
from nas_recon.defaults import SIZE
from nas_recon.device import place, resolve_device
from nas_recon.errors import ConfigError
from nas_recon.evaluate.metrics import METRICS, aggregate, slice_metrics, volume_metrics
from nas_recon.io import atomic_write_text
from nas_recon.models.baselines import ZeroFilled
from nas_recon.models.tv import tv_reconstruct_many
from nas_recon.physics.fft import chan_to_complex, complex_to_chan
from nas_recon.physics.fusion import KSpaceFusion
from nas_recon.physics.masks import MaskSpec

# predict(batch) -> 2-channel output in the batch's scaled units
Predictor = Callable[[Sample], torch.Tensor]


def network_predictor(model: torch.nn.Module, device: torch.device) -> Predictor:
    """Batched inference of a network."""
    model = place(model, device).eval()

    @torch.inference_mode()
    def predict(b: Sample) -> torch.Tensor:
        return model(*b.inputs(device)).float().cpu()

    return predict


def tv_predictor(backend: str = "auto") -> tuple[Predictor, dict[str, str]]:
    """TV reconstruction slice by slice; the dict records which backend ran."""
    used: dict[str, str] = {}

    def predict(b: Sample) -> torch.Tensor:
        n = b.input.shape[0]
        maps = [chan_to_complex(b.maps[i]) for i in range(n)] if b.multicoil else None
        imgs, name = tv_reconstruct_many([chan_to_complex(b.kspace[i]) for i in range(n)],
                                         [b.mask[i, 0, 0] for i in range(n)], backend, maps)
        used["backend"] = name
        out = torch.stack([complex_to_chan(img) for img in imgs])
        if b.multicoil:  # as every SENSE method's output: the RSS of its data-consistent coil images
            out = KSpaceFusion().coil_output(out, b.kspace, b.mask, b.maps)
        return out

    return predict, used


def predictor_for(checkpoint: str | list[str] | None, model: str | None,
                  device_name: str) -> tuple[Predictor, dict[str, Any]]:
    """A predictor from --checkpoint (several: their ensemble) or --model zero-filled|tv, and a description of it."""
    from nas_recon.engine.checkpoint import model_from_checkpoint

    if (checkpoint is None) == (model is None):
        raise ConfigError("give exactly one of --checkpoint FILE or --model zero-filled|tv")
    if isinstance(checkpoint, list | tuple):
        if len(checkpoint) > 1:
            return ensemble_predictor([str(c) for c in checkpoint], device_name)
        checkpoint = str(checkpoint[0])
    if checkpoint is not None:
        net, spec, ck = model_from_checkpoint(Path(checkpoint))
        data = ck["data"] if isinstance(ck.get("data"), dict) else {}
        coils = data.get("coils", 0)
        est = {"coil_estimator": data.get("coil_estimator", "auto")} if coils else {}  # its inputs' maps
        return network_predictor(net, resolve_device(device_name)), {"model": spec.name, "checkpoint": checkpoint,
                                                                     "epoch": ck.get("epoch"), "coils": coils, **est}
    if model == "zero-filled":
        return (lambda b: ZeroFilled()(*b.inputs())), {"model": "zero-filled"}
    if model == "tv":
        pred, used = tv_predictor()
        return pred, {"model": "tv", "tv_backend": used}
    raise ConfigError(f"--model: '{model}' cannot be evaluated without training; expected zero-filled or tv "
                      "(or --checkpoint FILE)")


ENSEMBLE_KEYS = {"size": "--size", "coils": "coil count", "input_max": "input clamp", "folder": "training data"}


def training_data(checkpoint: Path, folder: Any) -> Any:
    """What a checkpoint was trained on: its run record's content digest when run.json beside it has one (the same
    files under another path are the same data), else the folder it names."""
    try:
        record = json.loads((checkpoint.parent / "run.json").read_text()).get("data")
    except (OSError, ValueError, AttributeError):
        record = None
    if isinstance(record, dict) and isinstance(record.get("digest"), str):
        return f"files of digest {record['digest'][:12]}"
    return folder


def ensemble_predictor(checkpoints: list[str], device_name: str) -> tuple[Predictor, dict[str, Any]]:
    """The mean of several trained networks' outputs (complex images); refused, before any work, for networks
    trained at another size, coil count or on other data than the first."""
    from nas_recon.engine.checkpoint import model_from_checkpoint

    device = resolve_device(device_name)
    members, first = [], None
    for path in checkpoints:
        net, spec, ck = model_from_checkpoint(Path(path))
        data = ck["data"] if isinstance(ck.get("data"), dict) else {}
        key = {k: data.get(k) for k in ENSEMBLE_KEYS}
        key["folder"] = training_data(Path(path), key["folder"])
        if first is None:
            first = (path, key)
        for k, what in ENSEMBLE_KEYS.items():
            if key[k] != first[1][k]:
                raise ConfigError(f"--checkpoint: {path} was trained with {what} {key[k]!r}, {first[0]} with "
                                  f"{first[1][k]!r}; an ensemble averages networks trained on the same data")
        members.append((network_predictor(net, device), spec.name, ck.get("epoch")))

    def predict(b: Sample) -> torch.Tensor:
        return torch.stack([m[0](b) for m in members]).mean(0)

    names = [m[1] for m in members]
    return predict, {"model": "ensemble of " + " + ".join(names), "checkpoint": list(checkpoints),
                     "members": names, "epoch": [m[2] for m in members], "coils": int(first[1]["coils"] or 0)}


def kind_of(coils: int) -> str:
    """'single-coil' or 'multi-coil (N coils)'."""
    return f"multi-coil ({coils} coils)" if coils else "single-coil"


def check_kind(trained: int, held: int, network: str | Path, data: str | Path) -> None:
    """The one refusal of data of the other kind (or coil count) than a network was trained on."""
    if trained != held:
        raise ConfigError(f"{network}: the network was trained on {kind_of(trained)} data; {data} holds "
                          f"{kind_of(held)} data")


def evaluate(predict: Predictor, data: str | Path, size: int = SIZE, masks: MaskSpec | None = None, seed: int = 0,
             crop: int | None = None, max_slices: int | None = None, batch_size: int = 4,
             progress: Callable[[int, int], None] | None = None, trained_on: tuple[int, str] | None = None,
             maps_dir: str | Path | None = None, coil_estimator: str = "auto") -> dict[str, Any]:
    """Metrics of `predict` on every slice of `data` at each acceleration (fixed masks).

    `trained_on`: (coil count, checkpoint) of a network; data of the other kind is refused. `coil_estimator`:
    multi-coil, the maps' estimator (a network's: the one it trained with).
    """
    ds = SliceDataset(data, size, crop, masks or MaskSpec(), "eval", seed, max_slices, maps_dir=maps_dir,
                      coil_estimator=coil_estimator)
    if trained_on is not None:
        check_kind(trained_on[0], ds.coils, trained_on[1], data)
    loader = DataLoader(ds, batch_size)
    rows: list[dict[str, Any]] = []
    vols: dict[tuple[str, float], dict[str, list]] = defaultdict(lambda: {"gt": [], "pred": [], "max": 0.0})
    done = 0
    for b in loader:
        out = predict(b)
        for i, (gt, pred) in enumerate(unscaled_magnitudes(out, b)):
            acc = float(b.acceleration[i])
            m = slice_metrics(gt, pred, float(b.max_value[i]))
            rows.append({"file": b.file[i], "slice": int(b.slice[i]), "acceleration": acc, **m})
            v = vols[(b.file[i], acc)]
            v["gt"].append(gt)
            v["pred"].append(pred)
            v["max"] = float(b.max_value[i])
        done += out.shape[0]
        if progress is not None:
            progress(done, len(ds))
    ds.close()
    volumes = [
        {"file": f, "acceleration": a, "slices": len(v["gt"]),
         **volume_metrics(np.stack(v["gt"]), np.stack(v["pred"]), v["max"])}
        for (f, a), v in sorted(vols.items())
    ]
    return {
        "format": "nas-recon-metrics", "version": 1, "package_version": __version__,
        "data": str(data), "size": size, "crop": crop, "mask_type": ds.masks.kind, "seed": seed,
        "metrics": list(METRICS), "aggregate": aggregate(rows), "volumes": volumes, "slices": rows,
    }


def write_metrics(result: dict[str, Any], path: str | Path) -> None:
    """metrics.json, atomically."""
    atomic_write_text(Path(path), json.dumps(json_safe(result), indent=1, allow_nan=False) + "\n")


def json_safe(obj: Any) -> Any:
    """Non-finite floats become null, so the file stays valid JSON (NaN/Infinity are not JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj
