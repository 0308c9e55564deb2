"""fastMRI data path: file checks, typed samples, slice datasets, volume splits, demo data.

The names below load on first use (PEP 562), so that a light module of the package (coilmaps' option, identity)
does not pull h5py and the dataset into a command's start-up (`nas-recon --help`)."""

from importlib import import_module
from typing import Any

_WHERE = {"SliceDataset": "dataset", "list_volumes": "dataset", "split_volumes": "dataset", "VolumeInfo": "hdf5",
          "inspect_volume": "hdf5", "Sample": "sample"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'nas_recon.data' has no attribute '{name}'")
    return getattr(import_module(f"nas_recon.data.{_WHERE[name]}"), name)
