"""A retraining run's settings, each declared once (retrain's command line is generated from these fields and the
recipe's); no training imports."""

from __future__ import annotations

from dataclasses import dataclass

from nas_recon.defaults import SIZE
from nas_recon.options import option
from nas_recon.physics.fusion import CG_ITERATIONS
from nas_recon.train.precision import PRECISIONS
from nas_recon.train.recipe import Recipe


@dataclass
class RetrainConfig:
    """A retraining run: what model, what data, which recipe (with overrides applied)."""

    data: str = option(help="data folder with train/ and val/", kind="path", required=True)
    out: str = option(help="run folder", kind="path", required=True)
    recipe: Recipe
    model: str | None = None
    genotype: str | None = None
    seed: int = option(0, kind="seed_int")
    device: str = "auto"
    size: int = option(SIZE, f"pairing crop of the images (default {SIZE})", kind="size_int")
    precision: str = option("32", "32 (default), bf16-mixed (autocast; FFTs, fusion and loss in float32) or "
                            "16-mixed (CUDA)", choices=PRECISIONS)
    maps_dir: str | None = option(None, "multi-coil: folder caching the ESPIRiT maps (default OUT/maps); runs on "
                                  "the same data may share one", kind="path")
    soft_dc: bool = option(False, "a learnt data-consistency weight in every fusion (started at 1) instead of "
                           "replacing the sampled points; multi-coil: MoDL's CG solve", flag=True)
    cg_iterations: int = option(CG_ITERATIONS, f"multi-coil soft DC: conjugate-gradient steps per fusion (default "
                                f"{CG_ITERATIONS})", kind="pos_int")
    channels: int | None = option(None, "a --model at another width (e.g. dccnn-3 at the width of a FLOPs target: "
                                  "nas-recon cost --model dccnn-3 --flops-target G says which)", kind="pos_int")
    stop_epoch: int | None = None  # train up to this epoch only (the recipe's schedule unchanged; a later call with a
    #                                larger stop_epoch resumes): a successive-halving rung
    validate: str = "every"  # "every" epoch (best.pt by val PSNR), or only at the "end" of this call (a rung's score)
