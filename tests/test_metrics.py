"""Metrics follow fastMRI conventions and equal scikit-image."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from nas_recon.evaluate.metrics import aggregate, slice_metrics, volume_metrics


@pytest.fixture
def volumes():
    rng = np.random.default_rng(0)
    gt = rng.random((4, 40, 36)) * 3
    pred = gt + 0.1 * rng.standard_normal(gt.shape)
    return gt, pred


def test_volume_metrics_equal_scikit_image_and_hand_formulas(volumes):
    gt, pred = volumes
    m = volume_metrics(gt, pred)
    dr = gt.max()
    assert m["mse"] == pytest.approx(np.mean((gt - pred) ** 2), abs=1e-12)
    assert m["nmse"] == pytest.approx(np.sum((gt - pred) ** 2) / np.sum(gt**2), abs=1e-12)
    assert m["psnr"] == pytest.approx(10 * np.log10(dr**2 / np.mean((gt - pred) ** 2)), abs=1e-6)
    assert m["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=dr), abs=1e-6)
    ref_ssim = np.mean(
        [
            structural_similarity(g, p, data_range=dr, win_size=7, K1=0.01, K2=0.03)
            for g, p in zip(gt, pred, strict=True)
        ]
    )
    assert m["ssim"] == pytest.approx(ref_ssim, abs=1e-6)


def test_slice_metrics_use_volume_data_range(volumes):
    gt, pred = volumes
    dr = gt.max()
    s = slice_metrics(gt[1], pred[1], dr)
    assert s["psnr"] == pytest.approx(peak_signal_noise_ratio(gt[1], pred[1], data_range=dr), abs=1e-6)
    assert s["ssim"] == pytest.approx(structural_similarity(gt[1], pred[1], data_range=dr, win_size=7), abs=1e-6)
    perfect = slice_metrics(gt[0], gt[0], dr)
    assert perfect["mse"] == 0 and perfect["nmse"] == 0 and perfect["ssim"] == pytest.approx(1.0)
    assert perfect["psnr"] == float("inf")


def test_aggregate_splits_by_acceleration():
    rows = [{"acceleration": a, "mse": v, "nmse": v, "psnr": 10 * v, "ssim": v / 10}
            for a, v in [(4, 1.0), (4, 3.0), (8, 5.0)]]
    agg = aggregate(rows)
    assert list(agg) == ["4x", "8x"]
    assert agg["4x"]["psnr"] == {"mean": 20.0, "std": 10.0, "n": 2}
    assert agg["8x"]["mse"]["n"] == 1
