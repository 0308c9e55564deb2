"""The GPU bench's dry run (CI runs the code path of `bench/gpu.py` at a tiny size on the CPU)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.realsource
def test_gpu_bench_dry_run_prints_the_quality_and_throughput_table(tmp_path):
    out = tmp_path / "gpu"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--dry-run", "--out", str(out)],
                       capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| model | GFLOPs | PSNR 4x | SSIM 4x | PSNR 8x | SSIM 8x | train img/s | infer img/s |" in r.stdout
    rows = json.loads((out / "gpu.json").read_text())
    assert [row["model"] for row in rows] == ["searched", "random_00", "dccnn-3"]
    for row in rows:
        assert all(math.isfinite(row[k]) and row[k] > 0 for k in ("psnr_4x", "psnr_8x", "train_img_s", "gflops"))
    # the paper recipe on whole images: the retrain runs trained without crops
    recipe = json.loads((out / "dccnn-3" / "run.json").read_text())["recipe"]
    assert recipe["crop"] == 0 and recipe["lr"] == 1e-3 and recipe["lr_after"] == 1e-4


@pytest.mark.slow
@pytest.mark.realsource
def test_gpu_bench_dry_run_of_the_selection(tmp_path):
    """`bench/gpu.py --select halving --dry-run`: the search that pays on the full budget's code path, at a tiny
    size on the CPU; its trials and retrainings under the paper recipe on whole images."""
    out = tmp_path / "gpu"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--dry-run", "--select", "halving", "--out",
                        str(out)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "selection: " in r.stdout and "retraining-equivalents" in r.stdout
    rows = json.loads((out / "gpu.json").read_text())
    assert [row["model"] for row in rows] == ["searched", "random_00", "dccnn-3", "modl-3"]
    g = json.loads((out / "search" / "genotype.json").read_text())
    assert g["select"] == "halving" and g["space"] == "macro_a"
    trial = next((out / "search" / "selection" / "trials").iterdir())
    assert json.loads((trial / "run.json").read_text())["recipe"]["crop"] == 0
