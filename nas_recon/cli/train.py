"""`nas-recon retrain | evaluate | reconstruct | export`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nas_recon.cli.common import (
    acceleration,
    add_device,
    add_devices,
    add_options,
    add_verbose,
    check_ranks,
    config_from_args,
    console,
    err_console,
    nonneg_int,
    overrides_from_args,
    relaunch,
    seed_int,
    size_int,
)
from nas_recon.defaults import ACCELERATIONS, SIZE
from nas_recon.physics.masks import MASK_KINDS
from nas_recon.train.config import PretrainConfig, RetrainConfig
from nas_recon.train.recipe import Recipe


def progress_bar() -> Progress:
    """The standard rich progress bar."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the training-side commands."""
    p = sub.add_parser("retrain", help="train a genotype or a baseline from scratch under a recipe")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--genotype", type=Path, help="genotype JSON of a searched cell")
    g.add_argument("--model", help="baseline name: unet, dccnn-N, modl-N, rdn-N")
    add_options(p, RetrainConfig)  # --data --out --seed --size --precision --maps-dir --soft-dc --cg-iterations ...
    p.add_argument("--recipe", default="paper", help="paper, quick or a TOML path (default paper)")
    add_options(p, Recipe, overrides=True)  # the recipe's keys that the command line may set
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    add_devices(p)
    add_device(p)
    add_verbose(p)
    p.set_defaults(func=run_retrain_cmd)

    t = sub.add_parser("pretrain", help="contrastive pretraining of an image network's encoder on undersampled "
                       "images (Self-MRI's SimCLR); retrain --init fine-tunes from it")
    add_options(t, PretrainConfig)
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    add_device(t)
    add_verbose(t)
    t.set_defaults(func=run_pretrain_cmd)

    e = sub.add_parser("evaluate", help="metrics on a data folder with fixed masks, split by acceleration")
    g = e.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint", type=Path, nargs="+", help="a retrain checkpoint (best.pt or last.pt); several: "
                   "their ensemble (the mean of their outputs)")
    g.add_argument("--model", choices=["zero-filled", "tv"], help="a method without training")
    e.add_argument("--data", required=True, type=Path, help="folder of .h5 volumes (e.g. DATA/test)")
    e.add_argument("--out", required=True, type=Path, help="metrics.json to write")
    e.add_argument("--size", type=size_int, default=SIZE)
    e.add_argument("--crop", type=nonneg_int, default=0, help="evaluate on centre crops (0 = full image)")
    e.add_argument("--mask-type", default="random", choices=MASK_KINDS)
    e.add_argument("--accelerations", type=acceleration, nargs="+", default=list(ACCELERATIONS))
    e.add_argument("--max-slices", type=nonneg_int)
    e.add_argument("--seed", type=seed_int, default=0, help="seed of the fixed evaluation masks")
    add_device(e)
    add_verbose(e)
    e.set_defaults(func=run_evaluate_cmd)

    r = sub.add_parser("reconstruct", help="write fastMRI-style reconstructions of files")
    r.add_argument("--checkpoint", required=True, type=Path)
    r.add_argument("--input", required=True, type=Path, help="an .h5 file or a folder of them")
    r.add_argument("--out", required=True, type=Path, help="output folder")
    r.add_argument("--acceleration", type=acceleration, help="for files without a mask (default 4)")
    r.add_argument("--mask-type", choices=MASK_KINDS, help="for files without a mask (default random)")
    r.add_argument("--size", type=size_int, default=SIZE)
    r.add_argument("--seed", type=seed_int, default=0)
    add_device(r)
    add_verbose(r)
    r.set_defaults(func=run_reconstruct_cmd)

    x = sub.add_parser("export", help="export a checkpoint to TorchScript or ONNX")
    x.add_argument("--checkpoint", required=True, type=Path)
    x.add_argument("--format", required=True, choices=["torchscript", "onnx"])
    x.add_argument("--out", required=True, type=Path)
    x.add_argument("--size", type=size_int, default=SIZE, help="ONNX input size (TorchScript takes any size)")
    add_verbose(x)
    x.set_defaults(func=run_export_cmd)


class RichRetrainProgress:
    """Progress for retraining."""

    def __init__(self, bar: Progress) -> None:
        self.bar, self.task, self.steps, self.epochs, self.val = bar, None, 0, 0, ""

    def start(self, epochs: int, steps: int, start_epoch: int) -> None:
        self.steps, self.epochs = steps, epochs
        self.task = self.bar.add_task("retrain", total=epochs * steps, completed=start_epoch * steps, info="")

    def step(self, epoch: int, step: int, loss: float) -> None:
        self.bar.update(self.task, completed=epoch * self.steps + step,
                        info=f"epoch {epoch + 1}/{self.epochs}  loss {loss:.4f}{self.val}")

    def epoch_end(self, row: dict[str, Any]) -> None:
        if row["val_psnr"] != "":
            self.val = f"  val PSNR {row['val_psnr']:.2f} SSIM {row['val_ssim']:.4f}"
        elif row.get("val_loss", "") != "":
            self.val = f"  val held-out loss {row['val_loss']:.4f}"


class RichPretrainProgress:
    """Progress for pretraining."""

    def __init__(self, bar: Progress) -> None:
        self.bar, self.task, self.steps, self.epochs = bar, None, 0, 0

    def start(self, epochs: int, steps: int, start_epoch: int) -> None:
        self.steps, self.epochs = steps, epochs
        self.task = self.bar.add_task("pretrain", total=epochs * steps, completed=start_epoch * steps, info="")

    def step(self, epoch: int, step: int, loss: float) -> None:
        self.bar.update(self.task, completed=epoch * self.steps + step,
                        info=f"epoch {epoch + 1}/{self.epochs}  NT-Xent {loss:.4f}")


def run_pretrain_cmd(args: argparse.Namespace) -> int:
    """Pretrain with a progress bar."""
    from nas_recon.train.pretrain import run_pretrain

    cfg = config_from_args(PretrainConfig, args, device=args.device)
    with progress_bar() as bar:
        res = run_pretrain(cfg, resume=args.resume, progress=RichPretrainProgress(bar))
    last = res["history"][-1] if res["history"] else {}
    loss = last.get("loss", float("nan"))
    console.print(f"{cfg.model} encoder: {len(res['history'])} epochs, last NT-Xent {loss:.4f}; wrote "
                  f"{res['encoder']} (retrain --model {cfg.model} --init {res['run_dir']})")
    return 0


def run_retrain_cmd(args: argparse.Namespace) -> int:
    """Retrain with a progress bar."""
    if args.devices > 1:
        from nas_recon.train.recipe import for_model, load_recipe

        batch = args.batch_size or for_model(load_recipe(args.recipe), args.model or "searched", args.size).batch_size
        check_ranks(args.devices, batch, args.device)
        return relaunch(args.argv, args.devices)
    from nas_recon.train.recipe import load_recipe, with_overrides
    from nas_recon.train.retrain import run_retrain

    given = overrides_from_args(Recipe, args)
    from nas_recon.models.registry import IMAGE_MODELS

    if args.model in IMAGE_MODELS:  # an explicit flag wins over the recipe's U-Net protocol (unet_crop/unet_batch_size)
        given.update({f"unet_{k}": given[k] for k in ("crop", "batch_size", "repeats") if k in given})
    recipe = with_overrides(load_recipe(args.recipe), given, "command line")
    cfg = config_from_args(RetrainConfig, args, recipe=recipe, model=args.model,
                           genotype=str(args.genotype) if args.genotype else None, device=args.device)
    if args.resume and not (Path(args.out) / "last.pt").is_file():
        console.print(f"--resume: nothing to resume in {args.out} (no last.pt); starting a fresh run")
    with progress_bar() as bar:
        res = run_retrain(cfg, resume=args.resume, progress=RichRetrainProgress(bar))
    last = res["history"][-1] if res["history"] else {}
    best = (f"best val PSNR {res['best_psnr']:.2f} dB" if cfg.recipe.supervision == "full" else
            f"best val held-out k-space loss {-res['best_psnr']:.4f}")
    console.print(f"{res['spec'].name}: {res['params']:,} params; {best}"
                  f"{'; last epoch ' + str(last.get('epoch')) if last else ''}; wrote {res['run_dir']}")
    return 0


def metrics_table(title: str, agg: dict[str, Any]) -> Table:
    """Mean +- std per acceleration."""
    t = Table(title=title)
    for col in ("acceleration", "MSE", "NMSE", "PSNR (dB)", "SSIM", "slices"):
        t.add_column(col, justify="right")
    for acc, m in agg.items():
        t.add_row(acc, f"{m['mse']['mean']:.3e} ± {m['mse']['std']:.1e}",
                  f"{m['nmse']['mean']:.4f} ± {m['nmse']['std']:.4f}",
                  f"{m['psnr']['mean']:.2f} ± {m['psnr']['std']:.2f}",
                  f"{m['ssim']['mean']:.4f} ± {m['ssim']['std']:.4f}", str(m["psnr"]["n"]))
    return t


def run_evaluate_cmd(args: argparse.Namespace) -> int:
    """Evaluate and print the table."""
    from nas_recon.data.dataset import list_volumes
    from nas_recon.evaluate.scoring import evaluate, predictor_for, write_metrics
    from nas_recon.outputs import check_output_file
    from nas_recon.physics.masks import MaskSpec

    inputs = list(args.checkpoint or [])
    if args.data.is_dir():
        inputs += list_volumes(args.data)
    elif args.data.is_file():
        inputs.append(args.data)
    check_output_file(args.out, "metrics", inputs=inputs)  # decided before any work
    checkpoints = [str(c) for c in args.checkpoint] if args.checkpoint else None
    predict, info = predictor_for(checkpoints, args.model, args.device)
    with progress_bar() as bar:
        task = bar.add_task("evaluate", total=None, info="")
        result = evaluate(predict, args.data, args.size, MaskSpec(args.mask_type, tuple(args.accelerations)),
                          args.seed, args.crop or None, args.max_slices,
                          progress=lambda i, n: bar.update(task, completed=i, total=n),
                          trained_on=(info["coils"], ", ".join(checkpoints)) if checkpoints else None,
                          coil_estimator=info.get("coil_estimator", "auto"))
    result["method"] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in info.items()}
    write_metrics(result, args.out)
    console.print(metrics_table(f"{info['model']} on {args.data}", result["aggregate"]))
    console.print(f"wrote {args.out}")
    return 0


def run_reconstruct_cmd(args: argparse.Namespace) -> int:
    """Reconstruct files."""
    from nas_recon.device import resolve_device
    from nas_recon.engine.checkpoint import model_from_checkpoint
    from nas_recon.evaluate.reconstruct import reconstruct
    from nas_recon.evaluate.scoring import network_predictor

    net, spec, ck = model_from_checkpoint(args.checkpoint)
    trained = ck["data"].get("coils", 0) if isinstance(ck.get("data"), dict) else 0
    check_input_kind(trained, args.input, args.checkpoint)  # before any output
    predict = network_predictor(net, resolve_device(args.device))
    with progress_bar() as bar:
        task = bar.add_task("reconstruct", total=None, info="")
        outs, failed = reconstruct(predict, args.input, args.out, args.size, args.acceleration, args.mask_type,
                                   args.seed, progress=lambda i, n: bar.update(task, completed=i, total=n))
    console.print(f"{spec.name}: wrote {len(outs)} file(s) to {args.out}")
    for line in failed:
        err_console.print(f"error: {escape(line)}")
    return 2 if failed else 0


def check_input_kind(trained: int, source: Path, checkpoint: Path) -> None:
    """Every input file of the kind (and coil count) the network was trained on, checked before anything is
    written (a file that cannot be read is reported with the file when it is reconstructed)."""
    from nas_recon.data.dataset import list_volumes
    from nas_recon.data.hdf5 import inspect_volume
    from nas_recon.errors import NasReconError
    from nas_recon.evaluate.scoring import check_kind

    for f in [source] if source.is_file() else list_volumes(source):
        try:
            held = inspect_volume(f).coils
        except NasReconError:
            continue
        check_kind(trained, held, checkpoint, f)


def run_export_cmd(args: argparse.Namespace) -> int:
    """Export a checkpoint."""
    from nas_recon.engine.checkpoint import model_from_checkpoint
    from nas_recon.evaluate.export import check_exportable, export_model
    from nas_recon.outputs import check_output_file

    check_output_file(args.out, args.format, inputs=[args.checkpoint])
    net, spec, ck = model_from_checkpoint(args.checkpoint)
    coils = ck["data"].get("coils", 0) if isinstance(ck.get("data"), dict) else 0
    if spec.name.startswith("varnet"):
        from nas_recon.errors import ConfigError

        raise ConfigError(f"{args.checkpoint}: {spec.name} is E2E-VarNet (FFTs and a sensitivity network in its "
                          "cascades); export takes the cascade networks")
    check_exportable(net, args.format, coils, f"{args.checkpoint}: {spec.name}")
    export_model(net, args.format, args.out, args.size, coils)
    console.print(f"{spec.name}: wrote {args.format} to {args.out}")
    return 0
