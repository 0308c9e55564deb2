"""Write golden_single_coil.npz: the single-coil transform's outputs for tests/test_multicoil.py.

Run from the repository root: `python tests/data/make_golden_single_coil.py`. The stored file was made on the
2-core AMD EPYC machine from the code of commit baeaae5 (before the multi-coil transform existed); that code and
today's gave the same bytes there. Float tensors are rounded to 1e-5 (the test compares them within 1e-4), so the
file pins the values to what the physics needs, not the last bits a CPU kind rounds differently.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden_single_coil.npz"


def golden_arrays() -> dict[str, np.ndarray]:
    """name -> array for every sample of the golden configuration (2 volumes of 2 slices, size 32)."""
    sys.path.insert(0, str(HERE.parent))
    from conftest import write_volume

    from nas_recon.data.dataset import SliceDataset
    from nas_recon.physics.masks import MaskSpec

    root = Path(tempfile.mkdtemp())
    for i in range(2):
        write_volume(root / f"v{i}.h5", slices=2, seed=7 + i)
    out: dict[str, np.ndarray] = {}
    for crop, mode in ((16, "train"), (None, "eval")):
        ds = SliceDataset(root, 32, crop, MaskSpec("random", (4, 8)), mode, 3)
        ds.set_epoch(2)
        for i in range(len(ds)):
            x = ds[i]
            for name in ("input", "target", "kspace", "mask"):
                out[f"{mode}{i}_{name}"] = getattr(x, name).contiguous().numpy()
            out[f"{mode}{i}_scale"] = np.array(float(x.scale))
            out[f"{mode}{i}_max_value"] = np.array(float(x.max_value))
            out[f"{mode}{i}_acceleration"] = np.array(float(x.acceleration))
            out[f"{mode}{i}_where"] = np.array(f"{Path(x.file).name}|{x.slice}")
    return out


if __name__ == "__main__":
    arrays = golden_arrays()
    rounded = {k: np.round(v.astype(np.float64), 5).astype(np.float32)
               if v.dtype.kind == "f" and v.ndim > 0 and not k.endswith("_mask") else v for k, v in arrays.items()}
    np.savez_compressed(GOLDEN, **rounded)
    print(f"wrote {GOLDEN} ({len(rounded)} arrays)")
