"""fastMRI data path: file checks, typed samples, slice datasets, volume splits, demo data."""

from nas_recon.data.dataset import SliceDataset, list_volumes, split_volumes
from nas_recon.data.hdf5 import VolumeInfo, inspect_volume
from nas_recon.data.sample import Sample

__all__ = ["Sample", "SliceDataset", "VolumeInfo", "inspect_volume", "list_volumes", "split_volumes"]
