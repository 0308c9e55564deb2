"""A retraining run's settings, each declared once (retrain's command line is generated from these fields and the
recipe's); no training imports."""

from __future__ import annotations

from dataclasses import dataclass

from nas_recon.data.coilmaps import estimator_option
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
    coil_estimator: str = estimator_option()
    soft_dc: bool = option(False, "a learnt data-consistency weight in every fusion (started at 1) instead of "
                           "replacing the sampled points; multi-coil: MoDL's CG solve", flag=True)
    cg_iterations: int = option(CG_ITERATIONS, f"multi-coil soft DC: conjugate-gradient steps per fusion (default "
                                f"{CG_ITERATIONS})", kind="pos_int")
    channels: int | None = option(None, "a --model at another width (e.g. dccnn-3 at the width of a FLOPs target: "
                                  "nas-recon cost --model dccnn-3 --flops-target G says which)", kind="pos_int")
    stop_epoch: int | None = None  # train up to this epoch only (the recipe's schedule unchanged; a later call with a
    #                                larger stop_epoch resumes): a successive-halving rung
    init: str | None = option(None, "an image network's encoder from contrastive pretraining (nas-recon pretrain's "
                              "OUT or its encoder.pt) to fine-tune from", kind="path")
    init_freeze: float | None = option(None, "with --init: the share of the epochs the pretrained encoder stays "
                                       "frozen while the rest of the network learns, then all is fine-tuned "
                                       "(linear probing then fine-tuning); 0 = off (default)", kind="share",
                                       zero_is_none=True)
    validate: str = "every"  # "every" epoch (best.pt by val PSNR), or only at the "end" of this call (a rung's score)


@dataclass
class PretrainConfig:
    """A contrastive pretraining run (its command line is generated from these fields)."""

    data: str = option(help="data folder: its train/ slices are the views' source (undersampled files or fully "
                       "sampled ones; no reference is read)", kind="path", required=True)
    out: str = option(help="run folder (encoder.pt for retrain --init)", kind="path", required=True)
    model: str = option("unet", "the image network whose encoder is pretrained (unet, attention-unet, "
                        "attention-unet-small)", kind="str")
    epochs: int = option(20, "training epochs (default 20)", kind="pos_int")
    lr: float = option(1e-3, "Adam learning rate (default 1e-3)", kind="pos_float")
    batch_size: int = option(8, "slices per batch: 2 x this many views, each the others' negatives (default 8)",
                             kind="pos_int")
    crop: int = option(128, "random crop of each view (default 128; rows only on undersampled files)",
                       kind="pos_int")
    temperature: float = option(0.1, "NT-Xent temperature (default 0.1)", kind="pos_float")
    rho: float = option(0.4, "undersampled files: the share of the acquired columns each view drops (default "
                        "0.4); fully sampled files: each view its own 4x mask (Self-MRI's)", kind="fraction")
    size: int = option(SIZE, f"pairing crop of the images (default {SIZE})", kind="size_int")
    seed: int = option(0, kind="seed_int")
    device: str = "auto"
