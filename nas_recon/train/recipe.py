"""Retraining recipes: TOML files in retrain/ (paper, quick) or any path; errors name the key."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from nas_recon.defaults import ACCELERATIONS, SUPERVISIONS
from nas_recon.defaults import SSDU_RHO as RHO
from nas_recon.defaults import SSDU_SELECTIONS as SELECTIONS
from nas_recon.errors import ConfigError
from nas_recon.options import option
from nas_recon.paths import load_shipped_toml
from nas_recon.physics.masks import MASK_KINDS
from nas_recon.train.losses import SSDU_LOSS, parse_loss


@dataclass
class Recipe:
    """Optimiser schedule, loss and data settings of a retraining run (0 means 'none' for crops/limits); the option
    fields are also retrain's command-line overrides of a recipe file."""

    epochs: int = option(80, "training epochs (default: the recipe's)", kind="pos_int")
    lr: float = option(1e-3, "learning rate of the first part of the schedule", kind="pos_float")
    lr_after: float = 1e-4
    lr_drop: float = 0.5
    loss: str = option("l1", "l1, mse, ssim, ms-ssim or e.g. l1+ms-ssim:0.16", kind="str")
    batch_size: int = option(4, "training batch size (default: the recipe's)", kind="pos_int")
    crop: int = option(0, "random training crop (0 = full image)", kind="nonneg_int")
    mask_type: str = "random"
    accelerations: list[float] = field(default_factory=lambda: list(ACCELERATIONS))
    max_slices: int = option(0, "at most this many training slices (0 = all)", kind="nonneg_int")
    val_crop: int = 0
    val_max_slices: int = 0
    repeats: int = option(1, "draws of each training slice per epoch, each with its own crop and mask (default: the "
                          "recipe's); under ssdu each with its own Theta/Lambda split: multi-mask SSDU's K",
                          kind="pos_int")
    layer_lr: bool = True  # cell networks: per-conv Adam lr scaled by init std (nas_recon.models.init)
    unet_crop: int = 0  # U-Net training crop (fastMRI trains it on whole images); 0: same as crop
    unet_batch_size: int = 1  # U-Net batch size (fastMRI's: 1); 0: same as batch_size
    unet_repeats: int = 0  # U-Net draws of each training slice per epoch; 0: same as repeats
    mixup: float = option(0.0, "mixup: each training slice mixed with another, lam ~ Beta(MIXUP, MIXUP), measured "
                          "again under its own mask (single-coil; default off)", kind="pos_float")
    supervision: str = option("full", "full: train on fully sampled references; ssdu: self-supervised on "
                              "undersampled files (their own masks, no references; nas-recon data undersample "
                              "writes them), the loss on held-out k-space", choices=SUPERVISIONS)
    ssdu_rho: float = option(RHO, f"ssdu: share of the acquired columns held out for the loss (default {RHO})",
                             kind="fraction")
    ssdu_selection: str = option("uniform", "ssdu: how the held-out columns are drawn outside the centre",
                                 choices=SELECTIONS)

    def to_dict(self) -> dict[str, Any]:
        """The recipe's keys (mixup and SSDU's only when on, so that the records of runs without them stay as they
        were)."""
        d = asdict(self)
        if not self.mixup:
            del d["mixup"]
        if self.supervision == "full":
            for key in ("supervision", "ssdu_rho", "ssdu_selection"):
                del d[key]
        return d


def recipe_from_dict(data: dict[str, Any], where: str) -> Recipe:
    """Validate types and unknown keys."""
    known = {f.name: f for f in fields(Recipe)}
    out: dict[str, Any] = {}
    for key, val in data.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}', expected {', '.join(known)}")
        default = getattr(Recipe(), key)
        if isinstance(default, bool) != isinstance(val, bool):
            raise ConfigError(f"{where}: key '{key}' has the wrong type, got {val!r}")
        if isinstance(default, bool):
            pass
        elif isinstance(default, int):
            if not isinstance(val, int) or val < 0:
                raise ConfigError(f"{where}: key '{key}' must be a non-negative integer, got {val!r}")
        elif isinstance(default, float):
            off = key == "mixup" and val == 0  # mixup = 0: off, as the default
            if not isinstance(val, (int, float)) or not math.isfinite(val) or (val <= 0 and not off):
                raise ConfigError(f"{where}: key '{key}' must be a finite positive number, got {val!r}")
            if key == "ssdu_rho" and not val < 1:
                raise ConfigError(f"{where}: key 'ssdu_rho' must be a fraction in (0, 1), got {val!r}")
            val = float(val)
        elif isinstance(default, str):
            if not isinstance(val, str):
                raise ConfigError(f"{where}: key '{key}' must be a string, got {val!r}")
        elif isinstance(default, list):
            if not isinstance(val, list) or not val or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= 64 for v in val
            ):
                raise ConfigError(f"{where}: key '{key}' must be a list of accelerations in [1, 64], got {val!r}")
            val = [float(v) for v in val]
        out[key] = val
    r = Recipe(**out)
    if r.epochs < 1:
        raise ConfigError(f"{where}: key 'epochs' must be at least 1")
    if r.repeats < 1:
        raise ConfigError(f"{where}: key 'repeats' must be at least 1")
    if r.batch_size < 1:
        raise ConfigError(f"{where}: key 'batch_size' must be at least 1")
    if not 0 < r.lr_drop <= 1:
        raise ConfigError(f"{where}: key 'lr_drop' must be a fraction in (0, 1]")
    for key in ("crop", "val_crop", "unet_crop"):
        if 0 < getattr(r, key) < 8:
            raise ConfigError(f"{where}: key '{key}' must be 0 (whole images) or at least 8, got {getattr(r, key)}")
    for key, allowed in (("supervision", SUPERVISIONS), ("ssdu_selection", SELECTIONS)):
        if getattr(r, key) not in allowed:
            raise ConfigError(f"{where}: key '{key}' is '{getattr(r, key)}', expected {' or '.join(allowed)}")
    if r.supervision == "ssdu" and r.mixup:
        raise ConfigError(f"{where}: keys 'mixup' and 'supervision' = ssdu: mixup needs references (it mixes "
                          "targets), SSDU has none")
    if r.mask_type not in MASK_KINDS:
        raise ConfigError(f"{where}: key 'mask_type' is '{r.mask_type}', expected one of {', '.join(MASK_KINDS)}")
    if r.supervision == "ssdu":  # SSDU's loss is its own: normalised l1 + l2 on the held-out k-space
        return replace(r, loss=SSDU_LOSS)
    if r.loss == SSDU_LOSS:
        raise ConfigError(f"{where}: key 'loss': '{SSDU_LOSS}' is the loss of supervision = ssdu")
    try:
        parse_loss(r.loss)
    except ConfigError as e:
        raise ConfigError(f"{where}: key 'loss': {str(e).removeprefix('--loss: ')}") from None
    return r


def check_recipe_size(r: Recipe, size: int) -> None:
    """Refuse a validation crop larger than the paired images (a training crop that large means whole images)."""
    if r.val_crop > size:
        raise ConfigError(f"recipe key 'val_crop': {r.val_crop} is larger than the image size {size} (--size)")


def with_overrides(r: Recipe, overrides: dict[str, Any], where: str) -> Recipe:
    """A copy of `r` with `overrides` applied, checked like a recipe file's keys (`where` names their source)."""
    ssdu = overrides.get("supervision", r.supervision) == "ssdu"
    if ssdu and overrides.get("loss", SSDU_LOSS) != SSDU_LOSS:
        raise ConfigError(f"{where}: loss '{overrides['loss']}' under supervision ssdu, which trains on SSDU's own "
                          "loss (normalised l1 + l2 on the held-out k-space); drop the loss")
    return recipe_from_dict({**r.to_dict(), **overrides}, where)


def for_model(r: Recipe, name: str, size: int) -> Recipe:
    """The recipe a model trains under: the U-Net takes its own crop, batch size and repeats when the recipe sets them.

    A `unet_crop` at or above the image SIZE means whole images (fastMRI's protocol) at any --size.
    """
    from nas_recon.models.registry import IMAGE_MODELS

    if name not in IMAGE_MODELS:
        return r
    crop = min(r.unet_crop, size) if r.unet_crop else r.crop
    return replace(r, crop=crop, batch_size=r.unet_batch_size or r.batch_size, repeats=r.unet_repeats or r.repeats)


def load_recipe(name_or_path: str) -> Recipe:
    """A shipped recipe by name (paper, quick) or a TOML file by path."""
    data, path = load_shipped_toml(name_or_path, "retrain", "--recipe", "recipe")
    return recipe_from_dict(data, str(path))
