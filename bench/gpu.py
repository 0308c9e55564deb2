"""Benchmark (not a test): the `full` budget on one GPU in minutes, no internet.

On the offline demo data (60 slices at 320 x 320): a search under the full budget's settings (50 epochs, 96 x 96
crops), one random cell within 15 % of the searched cell's FLOPs, then the searched cell, the random cell and
dccnn-3 retrained under the paper recipe on whole 320 x 320 images (80 epochs, Adam 1e-3 -> 1e-4, L1) in fp32,
evaluated on test/ at 4x and 8x with fixed masks. Prints the quality table, training and inference images/s at
320 x 320 and the peak GPU memory of each model's training. Budgeted for at most 8 minutes on one GPU.

`--select halving` runs the search that pays instead (issue 29): `search --space macro_a --select halving
--flops-target like:dccnn-3` under the full budget's search settings, its trials under the paper recipe on whole
images (rungs of 27 and 80 epochs over a pool of 18, the best 3 with 2 seeds), then the selected network,
dccnn-3, modl-3 and one random network of the band retrained under the paper recipe. Budgeted for at most 8 minutes
on one GPU as well (a 320 x 320 training step of a 17 GFLOPs network is ~2 ms on a recent GPU).

`--dry-run` runs the same code path at a tiny size on the CPU (CI runs it): 64 x 64 images, one epoch each.

    python bench/gpu.py --out /tmp/gpu-bench            # on a machine with CUDA
    python bench/gpu.py --out /tmp/gpu-sel --select halving
    python bench/gpu.py --dry-run --out /tmp/gpu-dry [--select halving]    # anywhere
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from scaling import Log, finished, test_metrics

from nas_recon.cost import conv_macs
from nas_recon.data.demo import build_demo
from nas_recon.device import place, resolve_device
from nas_recon.genotype import load_genotype
from nas_recon.models.registry import ModelSpec, build_model, spec_for_genotype
from nas_recon.pipelines.demo import BUDGETS, budget_recipe, retrain_stage, search_stage
from nas_recon.runtime import configure
from nas_recon.select.sample import sample_genotypes, write_samples
from nas_recon.space import load_space
from nas_recon.train.precision import autocast


def throughput(spec: ModelSpec, size: int, batch: int, device: torch.device, steps: int,
               precision: str = "32", memory_format: torch.memory_format | None = None) -> dict[str, float]:
    """Training and inference images/s at size x size and the peak memory of a training step (CUDA only);
    `precision` as retrain's --precision (autocast for the network, the loss in float32); `memory_format` as
    nas_recon.device.place (None: the model's preferred layout)."""
    model = place(build_model(spec), device, memory_format).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, 2, size, size, device=device)
    k = torch.randn(batch, 2, size, size, device=device)
    m = (torch.rand(1, 1, 1, size, device=device) < 0.3).float()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    def train_step() -> None:
        with autocast(precision, device.type):
            pred = model(x, k, m)
        loss = (pred.float() - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    out = {}
    for name, call, n in (("train", train_step, steps), ("infer", None, steps)):
        if call is None:
            model.eval()

            def call() -> None:
                with torch.inference_mode(), autocast(precision, device.type):
                    model(x, k, m)
        call()  # warm-up (cuDNN autotuning, allocator)
        sync()
        t = time.perf_counter()
        for _ in range(n):
            call()
        sync()
        out[f"{name}_img_s"] = batch * n / (time.perf_counter() - t)
    out["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("gpu-bench"))
    p.add_argument("--device", default="auto")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: the code path, not the figures")
    p.add_argument("--epochs", type=int, default=0, help="retraining epochs instead of the paper's 80")
    p.add_argument("--select", choices=["alpha", "halving"], default="alpha",
                   help="alpha: the paper's search (paper_a); halving: macro_a, successive halving at DC-CNN-3's FLOPs")
    a = p.parse_args()
    configure()
    t0 = time.time()
    say = Log(t0)
    device = torch.device("cpu") if a.dry_run else resolve_device(a.device)
    if not a.dry_run and device.type != "cuda":
        raise SystemExit("bench/gpu.py: no CUDA device (use --dry-run to check the code path on the CPU)")
    b = BUDGETS["tiny" if a.dry_run else "full"]
    recipe = budget_recipe(BUDGETS["full"])
    recipe.crop, recipe.unet_crop = 0, 0  # whole images
    if a.dry_run:
        recipe.epochs, recipe.max_slices, recipe.val_max_slices = 1, 8, 2
    if a.epochs:
        recipe.epochs = a.epochs
    data = a.out / "data"
    if not (data / "manifest.json").is_file():
        build_demo(data, "mni152", b.size, 0, b.slices, force=True)
    sdir = a.out / "search"
    rdir = a.out / "random"
    if a.select == "halving":
        from nas_recon.pipelines.demo import write_recipe
        from nas_recon.search.budget import parse_flops_target

        band = parse_flops_target("like:dccnn-3")
        trials = write_recipe(recipe, a.out / "recipe.toml")
        search_stage(data, sdir, b, "macro_a", 0, str(device), say, "search that pays (full budget settings)",
                     select="halving", flops_target="like:dccnn-3", recipe=str(trials),
                     pool=b.pool if a.dry_run else 18, rungs=b.rungs if a.dry_run else 2,
                     finalists=b.finalists if a.dry_run else 3, final_seeds=b.final_seeds if a.dry_run else 2)
        searched = load_genotype(sdir / "genotype.json")
        if not list(rdir.glob("random_*.json")):
            write_samples(sample_genotypes(load_space("macro_a"), 1, 1234, band=band), rdir)
        models = {"searched": (None, sdir / "genotype.json"), "random_00": (None, sorted(rdir.glob("random_*"))[0]),
                  "dccnn-3": ("dccnn-3", None), "modl-3": ("modl-3", None)}
    else:
        search_stage(data, sdir, b, "paper_a", 0, str(device), say, "search (full budget settings)")
        searched = load_genotype(sdir / "genotype.json")
        if not list(rdir.glob("random_*.json")):
            write_samples(sample_genotypes(load_space("paper_a"), 1, 1234, like=searched, tolerance=0.15), rdir)
        random_file = sorted(rdir.glob("random_*.json"))[0]
        models = {"searched": (None, sdir / "genotype.json"), "random_00": (None, random_file),
                  "dccnn-3": ("dccnn-3", None)}
    rows = []
    for label, (name, gfile) in models.items():
        run = a.out / label
        started = time.time()
        if not finished(run, recipe.epochs):
            retrain_stage(data, run, label, recipe, b, 0, str(device), say, model=name,
                          genotype=None if gfile is None else str(gfile))
        seconds = time.time() - started
        spec = ModelSpec(name) if name else spec_for_genotype(load_genotype(gfile))
        gflops = conv_macs(build_model(spec), 320) / 1e9  # SPEC's cost: one 2 x 320 x 320 input
        rows.append({"model": label, "gflops": gflops, "retrain_s": seconds,
                     **test_metrics(run / "best.pt", data / "test", b.size, str(device)),
                     **throughput(spec, b.size, recipe.batch_size, device, 3 if a.dry_run else 20)})
        say.stage(f"{label}: {rows[-1]['psnr_4x']:.2f} dB at 4x")
    print(f"\nfull budget on one {'CPU (dry run)' if a.dry_run else torch.cuda.get_device_name(device)}: paper recipe "
          f"({recipe.epochs} epochs, whole {b.size} x {b.size} images, batch {recipe.batch_size}, fp32), demo data")
    print("| model | GFLOPs | PSNR 4x | SSIM 4x | PSNR 8x | SSIM 8x | train img/s | infer img/s | peak GiB | "
          "retrain s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        fl = f"{r['gflops']:.2f}"
        print(f"| {r['model']} | {fl} | {r['psnr_4x']:.2f} | {r['ssim_4x']:.4f} | {r['psnr_8x']:.2f} | "
              f"{r['ssim_8x']:.4f} | {r['train_img_s']:.1f} | {r['infer_img_s']:.1f} | {r['peak_mem_gib']:.2f} | "
              f"{r['retrain_s']:.0f} |")
    print(f"searched: {searched.summary()}\ntotal {time.time() - t0:.0f} s")
    if a.select == "halving":
        from nas_recon.select.halving import SELECTION, summary

        sel = summary(sdir / SELECTION)
        print(f"selection: {sel['cost']['retrainings']} retraining-equivalents, {sel['cost']['worker_hours']} "
              f"worker-hours on {sel['cost']['device']}; rungs {sel['plan']['epochs']}")
    (a.out / "gpu.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
