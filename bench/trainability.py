"""Benchmark (not a test): signal propagation at initialisation and early learning, before/after the scaled init.

For the searched example cell under PyTorch's default init ("torch", the old behaviour) and under
nas_recon.models.init ("scaled", out-conv gain OUT_GAIN), and for dccnn-3 as the reference:
- gain at init of every cascade's residual branch, |D(x) - x| / |x|, on real demo batches;
- RMS of the last cell's output relative to the module input (does the signal survive the stack?);
- validation PSNR (6 full 320 x 320 val slices, 4x and 8x, fixed masks) at init and every `--every` steps of
  Adam 1e-3 on 64 x 64 crops, batch 4, L1: the quick recipe's first steps.
- dccnn-3 with its biases removed (zeroed and frozen): the control that isolates what bias-free costs;
- the searched cell with plain Adam and with per-conv learning rates (layer_lr_groups, the default now);
- the searched cell with a zero-initialised bias added to every conv (a control outside SPEC's contract).

With --bias-placement: only the searched cell, bias-free and with zero-initialised biases on the first stem
conv, both stem convs, the cells' convs, or every conv (where would a bias buy most, for SPEC's owners).

Usage: python bench/trainability.py --data DEMO_DATA [--steps 150 --every 30] [--bias-placement]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from nas_recon import runtime
from nas_recon.data.dataset import SliceDataset
from nas_recon.device import place
from nas_recon.genotype import load_genotype
from nas_recon.models.init import add_conv_biases, layer_lr_groups
from nas_recon.models.registry import ModelSpec, build_model
from nas_recon.models.searched import build_from_genotype
from nas_recon.physics.masks import MaskSpec
from nas_recon.train.retrain import validate

EXAMPLE = "search_spaces/examples/paper_a_example.json"


@torch.no_grad()
def signal(model, batch) -> tuple[list[float], float | None]:
    """Residual-branch gain per cascade and the last cell's output RMS / input RMS (first cascade)."""
    x, gains, inner = batch.input, [], None
    for body, fusion in zip(model.bodies, model.fusions, strict=True):
        y = body(x)
        gains.append(float((y - x).norm() / x.norm()))
        if inner is None and hasattr(body, "cells"):
            s0 = body.stem0(x)
            s1 = body.stem1(s0)
            for cell in body.cells:
                s0, s1 = s1, cell(s0, s1)
            inner = float(s1.pow(2).mean().sqrt() / x.pow(2).mean().sqrt())
        x = fusion(y, batch.kspace, batch.mask)
    return gains, inner


def without_bias(model):
    """Zero and freeze every bias (the bias-free control)."""
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.data.zero_()
            p.requires_grad_(False)
    return model


def with_bias(model):
    """Add a zero-initialised, trainable bias to every bias-free conv (the control outside SPEC)."""
    add_conv_biases(model)
    return model


def with_bias_on(model, where: str):
    """Zero-initialised biases only on `where` of every module: stem0, stems (stem0 + stem1), cells, or all."""
    for body in model.bodies:
        parts = {"stem0": [body.stem0], "stems": [body.stem0, body.stem1], "cells": list(body.cells),
                 "all": [body]}[where]
        for part in parts:
            add_conv_biases(part)
    return model


def learn(model, ds, val, steps: int, every: int, layer_lr: bool) -> tuple[list[float], float]:
    """Validation PSNR at init and every `every` steps; seconds spent in the training steps."""
    dev = torch.device("cpu")
    params = layer_lr_groups(model, 1e-3) if layer_lr else [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, 1e-3)
    vl = DataLoader(val, 4)
    curve = [validate(model, vl, dev)["psnr"]]
    step, spent, epoch = 0, 0.0, 0
    while step < steps:
        ds.set_epoch(epoch)
        for b in DataLoader(ds, 4):
            t = time.perf_counter()
            loss = (model(*b.inputs()) - b.target).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            spent += time.perf_counter() - t
            step += 1
            if step % every == 0:
                curve.append(validate(model, vl, dev)["psnr"])
            if step >= steps:
                break
        epoch += 1
    return curve, spent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--every", type=int, default=30)
    p.add_argument("--bias-placement", action="store_true",
                   help="instead: the searched cell with biases on none / stem0 / both stems / the cells / every conv")
    a = p.parse_args()
    runtime.configure()
    masks = MaskSpec()
    ds = SliceDataset(f"{a.data}/train", 320, 64, masks, "train", 0)
    val = SliceDataset(f"{a.data}/val", 320, None, masks, "eval", 0, 6)
    probe = next(iter(DataLoader(ds, 4)))
    g = load_genotype(EXAMPLE)
    variants = [("searched, torch init, Adam (before)", lambda: build_from_genotype(g, init="torch"), False),
                ("searched, scaled init, Adam", lambda: build_from_genotype(g), False),
                ("searched, scaled init, per-conv lr (now)", lambda: build_from_genotype(g), True),
                ("searched + biases, per-conv lr (control)", lambda: with_bias(build_from_genotype(g)), True),
                ("dccnn-3 (reference)", lambda: build_model(ModelSpec("dccnn-3")), False),
                ("dccnn-3, biases removed (control)", lambda: without_bias(build_model(ModelSpec("dccnn-3"))), False)]
    if a.bias_placement:
        variants = [("searched, bias-free (SPEC)", lambda: build_from_genotype(g), True)]
        variants += [(f"searched + biases on {w}", lambda w=w: with_bias_on(build_from_genotype(g), w), True)
                     for w in ("stem0", "stems", "cells", "all")]
    print(f"{a.steps} steps of Adam 1e-3, 64 x 64 crops, batch 4; val PSNR every {a.every} steps\n")
    for name, make, layer_lr in variants:
        torch.manual_seed(0)
        model = place(make(), torch.device("cpu"))
        gains, inner = signal(model, probe)
        curve, spent = learn(model, ds, val, a.steps, a.every, layer_lr)
        inner_s = "-" if inner is None else f"{inner:.3g}"
        print(f"{name}\n  residual gain per cascade {[round(v, 4) for v in gains]}, last-cell RMS / input {inner_s}\n"
              f"  val PSNR {' '.join(f'{v:.2f}' for v in curve)}  (gain {curve[-1] - curve[0]:+.2f} dB), "
              f"{spent / a.steps * 1e3:.0f} ms/step", flush=True)


if __name__ == "__main__":
    main()
