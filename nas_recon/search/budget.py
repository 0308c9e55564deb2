"""FLOPs budgets: a target with a band, and the exact conv MACs of a genotype's network as `nas-recon cost` counts
them (thop), from per-op counts so that a search can price thousands of candidates.

Every conv of a cascade network is stride 1 and size-preserving, so its MACs are exactly (MACs per pixel) x H x W;
per-pixel counts are taken by thop on 8 x 8 inputs, op by op and for the frame around the ops (stem or head, 1x1
preprocessing, output conv), and a test holds their sum equal to thop on the whole network at 320 x 320.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from nas_recon.cost import conv_macs, module_macs
from nas_recon.defaults import SIZE
from nas_recon.errors import ConfigError
from nas_recon.genotype import Genotype, Node
from nas_recon.models.searched import bare_op, build_from_genotype

PIXELS = 8  # the side of the inputs per-pixel counts are taken on
BAND = 0.05  # the default half-width of a band, relative to its target


@dataclass(frozen=True)
class FlopsBand:
    """Conv MACs at SIZE x SIZE within target x (1 +- band); `source` is how the target was given."""

    target: float
    band: float
    source: str

    @property
    def lo(self) -> float:
        return self.target * (1 - self.band)

    @property
    def hi(self) -> float:
        return self.target * (1 + self.band)

    def holds(self, flops: float) -> bool:
        """True when `flops` (MACs at SIZE x SIZE) lies inside the band."""
        return self.lo <= flops <= self.hi

    def describe(self) -> str:
        """E.g. `17.34 G +- 5 % (like:dccnn-3)`."""
        return f"{self.target / 1e9:.2f} G ± {self.band:.0%} ({self.source})"

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "band": self.band, "source": self.source, "size": SIZE}


def parse_flops_target(text: str, band: float = BAND, option: str = "--flops-target") -> FlopsBand:
    """A target in G (conv MACs at 320 x 320, e.g. `17.3`), or `like:MODEL` (`like:dccnn-3`, or a genotype JSON)."""
    if not 0 < band < 1 or not math.isfinite(band):
        raise ConfigError(f"--flops-band: expected a fraction in (0, 1), got {band:g}")
    text = str(text).strip()
    if text.startswith("like:"):
        return FlopsBand(float(reference_flops(text[5:], option)), band, text)
    try:
        g = float(text)
    except ValueError:
        raise ConfigError(f"{option}: expected GFLOPs at {SIZE} x {SIZE} (e.g. 17.3) or like:MODEL (e.g. "
                          f"like:dccnn-3), got {text!r}") from None
    if not math.isfinite(g) or not 0 < g <= 1e5:
        raise ConfigError(f"{option}: expected a positive number of GFLOPs (at most 1e5), got {text!r}")
    return FlopsBand(g * 1e9, band, text)


def reference_flops(name: str, option: str) -> int:
    """Conv MACs at SIZE x SIZE of a registered model (`dccnn-3`) or of a genotype JSON file."""
    from nas_recon.genotype import load_genotype
    from nas_recon.models.registry import CLASSICAL, ModelSpec, build_model

    if not name:
        raise ConfigError(f"{option}: like: needs a model name or a genotype file, e.g. like:dccnn-3")
    if name.endswith(".json") or "/" in name:
        if not Path(name).is_file():
            raise ConfigError(f"{option}: like:{name}: genotype file not found")
        return genotype_flops(load_genotype(name))
    if name in CLASSICAL or name == "zero-filled":
        raise ConfigError(f"{option}: like:{name}: '{name}' has no FLOPs to match (not a network)")
    try:
        return conv_macs(build_model(ModelSpec(name)), SIZE)
    except ConfigError as e:
        raise ConfigError(f"{option}: like:{name}: {str(e).removeprefix('--model: ')}") from None


@functools.cache
def op_pixel_macs(op: str, channels: int) -> int:
    """Conv MACs per pixel of one op at `channels` channels (its ReLU, if any, costs none)."""
    return module_macs(bare_op(op, channels), (torch.zeros(1, channels, PIXELS, PIXELS),)) // PIXELS ** 2


@functools.cache
def frame_pixel_macs(backbone: str, nodes: int, cells: int, channels: int) -> int:
    """Conv MACs per pixel of one reconstruction module with every op a skip: stem or head, 1x1 preprocessing,
    output or tail convs."""
    ops = ("skip_connect",) * (1 if backbone == "chain" else 2)
    cell = tuple(Node((k,) if backbone == "chain" else (0, 1), ops) for k in range(nodes))
    g = Genotype(cell, "frame", channels, cells, 1, backbone=backbone)
    return conv_macs(build_from_genotype(g), PIXELS) // PIXELS ** 2


def cell_ops(g: Genotype) -> list[str]:
    """Every op of one cell."""
    return [o for n in g.cell for o in n.ops]


def genotype_pixel_macs(g: Genotype) -> int:
    """Conv MACs per pixel of the whole network a genotype builds (all cascades; shared bodies count per call)."""
    ops = sum(op_pixel_macs(o, g.channels) for o in cell_ops(g))
    return g.cascades * (frame_pixel_macs(g.backbone, g.nodes, g.cells, g.channels) + g.cells * ops)


def genotype_flops(g: Genotype, size: int = SIZE) -> int:
    """Conv MACs of the network at size x size (= `nas-recon cost --genotype`)."""
    return genotype_pixel_macs(g) * size * size


def fit_channels(g: Genotype, band: FlopsBand, choices: tuple[int, ...]) -> Genotype | None:
    """`g` at the channel count among `choices` whose FLOPs lie in the band, nearest the target (None: none does).

    FLOPs grow with the channels, so the search stops once past the band.
    """
    best: tuple[float, int] | None = None
    for c in sorted(choices):
        flops = genotype_flops(replace(g, channels=c))
        if band.holds(flops):
            gap = abs(flops - band.target)
            if best is None or gap < best[0]:
                best = (gap, c)
        elif flops > band.hi:
            break
    return None if best is None else replace(g, channels=best[1])


def check_in_band(g: Genotype, band: FlopsBand, what: str) -> int:
    """Refuse a network outside the band (the guard every candidate passes, counted by thop on the whole network)."""
    flops = conv_macs(build_from_genotype(g), PIXELS) // PIXELS ** 2 * SIZE * SIZE
    if not band.holds(flops):
        raise ConfigError(f"{what}: {flops / 1e9:.2f} GFLOPs lies outside the band {band.describe()}")
    return flops


def model_flops(name: str, channels: int) -> int:
    """Conv MACs at SIZE x SIZE of a registered model at `channels` (counted at 32 x 32: every model's MACs scale
    exactly with H x W at sizes its pooling divides)."""
    from nas_recon.models.registry import ModelSpec, build_model

    return conv_macs(build_model(ModelSpec(name, channels=channels)), 32) * (SIZE // 32) ** 2


def width_for(name: str, band: FlopsBand, limit: int = 512) -> int:
    """The width (channels) at which a registered family (dccnn-N, modl-N, rdn-N, unet) comes nearest the band's
    target: its published structure set to the target; refused when no width lands inside the band."""
    lo, hi = 1, limit
    while lo < hi:  # FLOPs grow with the width: the first width at or above the target
        mid = (lo + hi) // 2
        if model_flops(name, mid) < band.target:
            lo = mid + 1
        else:
            hi = mid
    best = min((c for c in (lo - 1, lo) if c >= 1), key=lambda c: abs(model_flops(name, c) - band.target))
    if not band.holds(model_flops(name, best)):
        raise ConfigError(f"--flops-target: {name} has no width within {band.describe()} (nearest: {best} channels, "
                          f"{model_flops(name, best) / 1e9:.2f} G)")
    return best
