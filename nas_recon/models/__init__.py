"""Reconstruction networks: the genotype builder and the handcrafted baselines."""

from nas_recon.models.cascade import CascadeNet
from nas_recon.models.searched import build_from_genotype

__all__ = ["CascadeNet", "build_from_genotype"]
