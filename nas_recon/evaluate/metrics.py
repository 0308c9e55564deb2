"""Reconstruction metrics on magnitude images, fastMRI conventions (scikit-image underneath)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

METRICS = ("mse", "nmse", "psnr", "ssim")


def mse(gt: np.ndarray, pred: np.ndarray) -> float:
    """Mean squared error."""
    return float(mean_squared_error(gt, pred))


def nmse(gt: np.ndarray, pred: np.ndarray) -> float:
    """Normalised MSE ||gt - pred||^2 / ||gt||^2."""
    return float(np.linalg.norm(gt - pred) ** 2 / np.linalg.norm(gt) ** 2)


def psnr(gt: np.ndarray, pred: np.ndarray, data_range: float) -> float:
    """PSNR with an explicit data range (fastMRI: max of the target volume); inf for a perfect match."""
    if np.array_equal(gt, pred):
        return float("inf")
    return float(peak_signal_noise_ratio(gt, pred, data_range=data_range))


def ssim(gt: np.ndarray, pred: np.ndarray, data_range: float) -> float:
    """SSIM of one 2-D slice: 7x7 uniform window, K1 0.01, K2 0.03 (fastMRI)."""
    return float(structural_similarity(gt, pred, data_range=data_range, win_size=7, K1=0.01, K2=0.03))


def slice_metrics(gt: np.ndarray, pred: np.ndarray, data_range: float) -> dict[str, float]:
    """All four metrics for one magnitude slice."""
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    return {
        "mse": mse(gt, pred),
        "nmse": nmse(gt, pred),
        "psnr": psnr(gt, pred, data_range),
        "ssim": ssim(gt, pred, data_range),
    }


def volume_metrics(gt: np.ndarray, pred: np.ndarray, data_range: float | None = None) -> dict[str, float]:
    """fastMRI's volume metrics: MSE/NMSE/PSNR over the volume, SSIM averaged over its slices."""
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    dr = float(gt.max()) if data_range is None else data_range
    return {
        "mse": mse(gt, pred),
        "nmse": nmse(gt, pred),
        "psnr": psnr(gt, pred, dr),
        "ssim": float(np.mean([ssim(g, p, dr) for g, p in zip(gt, pred, strict=True)])),
    }


def summarize(values: Iterable[float]) -> dict[str, float]:
    """Mean, standard deviation (population) and count."""
    arr = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}


def aggregate(rows: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Per-slice rows (with 'acceleration' and metric keys) -> {acceleration: {metric: mean/std/n}}."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[f"{r['acceleration']:g}x"].append(r)
    return {
        acc: {m: summarize(r[m] for r in group) for m in METRICS}
        for acc, group in sorted(groups.items(), key=lambda kv: float(kv[0][:-1]))
    }
