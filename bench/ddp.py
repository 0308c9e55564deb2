"""Benchmark (not a test): data-parallel retraining and search on this machine, 1 process against N ranks.

Runs `nas-recon retrain` (quick recipe) and `nas-recon search` (quick demo settings) on the demo data with
`--devices 1` and `--devices N`, alternating, and prints the wall time of each and the figures that must agree
(retrain: best validation PSNR; search: the genotype). On a CPU the N ranks share its cores (gloo, one thread
each): the figure is the cost of the machinery, not a speed-up; on N GPUs it is the scaling.

    python bench/ddp.py --data DATA [--devices 2] [--epochs 2] [--model dccnn-3]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nas_recon", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--devices", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--model", default="dccnn-3")
    a = p.parse_args()
    print("| command | ranks | wall s | result |")
    print("|---|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, a.devices):
            out = Path(tmp) / f"retrain-{n}"
            s = timed(["retrain", "--model", a.model, "--data", str(a.data), "--out", str(out), "--recipe", "quick",
                       "--epochs", str(a.epochs), "--devices", str(n)])
            with open(out / "train_log.csv") as f:
                best = max(float(r["val_psnr"]) for r in csv.DictReader(f))
            print(f"| retrain {a.model}, quick, {a.epochs} epochs | {n} | {s:.1f} | best val PSNR {best:.4f} |",
                  flush=True)
        for n in (1, a.devices):
            out = Path(tmp) / f"search-{n}"
            s = timed(["search", "--data", str(a.data), "--out", str(out), "--epochs", str(a.epochs), "--patience",
                       "3", "--crop", "64", "--batch-size", "4", "--max-slices", "24", "--repeats", "2",
                       "--devices", str(n)])
            cell = json.loads((out / "genotype.json").read_text())["cell"]
            print(f"| search darts, {a.epochs} epochs | {n} | {s:.1f} | "
                  f"{' '.join(o for node in cell for o in node['ops'])} |", flush=True)


if __name__ == "__main__":
    main()
