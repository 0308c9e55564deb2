"""BART (the Berkeley Advanced Reconstruction Toolbox) through its command line: .cfl/.hdr files in a temp dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from nas_recon.errors import NasReconError


def available() -> bool:
    """True when BART's `bart` binary is on PATH."""
    return shutil.which("bart") is not None


def write_cfl(stem: Path, arr: np.ndarray) -> None:
    """Write `arr` as BART's complex float .cfl with its .hdr (column-major, 16 dims)."""
    dims = list(arr.shape) + [1] * (16 - arr.ndim)
    stem.with_suffix(".hdr").write_text("# Dimensions\n" + " ".join(str(d) for d in dims) + "\n")
    arr.astype(np.complex64).flatten(order="F").tofile(stem.with_suffix(".cfl"))


def read_cfl(stem: Path) -> np.ndarray:
    """Read a BART .cfl/.hdr pair, trailing singleton dims dropped."""
    dims = [int(d) for d in stem.with_suffix(".hdr").read_text().splitlines()[1].split()]
    n = int(np.prod(dims))
    data = np.fromfile(stem.with_suffix(".cfl"), dtype=np.complex64, count=n)
    last = max(i for i, d in enumerate(dims) if d > 1) + 1 if n > 1 else 1
    return data.reshape(dims[:last], order="F")


def run(tool: list[str], inputs: dict[str, np.ndarray], output: str, threads: int | None = None) -> np.ndarray:
    """`bart TOOL... INPUTS... OUTPUT` on arrays (in BART's dim order); `threads`: its OpenMP threads (default
    BART's choice). A failure raises NasReconError with BART's last line."""
    with tempfile.TemporaryDirectory(prefix="nas-recon-bart-") as d:
        d = Path(d)
        for name, arr in inputs.items():
            write_cfl(d / name, arr)
        cmd = ["bart", *tool, *(str(d / n) for n in inputs), str(d / output)]
        env = None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise NasReconError(f"bart {tool[0]} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        return read_cfl(d / output)
