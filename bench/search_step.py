"""Benchmark (not a test): supernet vs derived-network step, NNI-driven vs bare PyTorch DARTS step.

Each variant runs in its own subprocess (so peak RSS is its own), one after the other in one run:
  derived  - one training step (forward, backward, Adam) of a derived network (the example genotype)
  bare     - one first-order DARTS iteration written in plain PyTorch on the NNI supernet
             (alpha step on one batch, weight step with grad clip 5 on another)
  nni      - the same iteration driven by NNI's DartsLightningModule inside a Lightning Trainer
Usage: python bench/search_step.py [--size 320] [--steps 6] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import torch
from torch.nn import functional as F

EXAMPLE = {
    "format": "nas-recon-genotype", "version": 1, "space": "paper_a", "channels": 32, "cells": 3, "cascades": 3,
    "nodes": 3, "cell": [{"inputs": [0, 1], "ops": ["sep_conv_3x3", "dil_2_conv_3x3"]},
                         {"inputs": [1, 2], "ops": ["dil_2_conv_3x3", "dil_3_conv_3x3"]},
                         {"inputs": [0, 3], "ops": ["sep_conv_3x3", "dil_3_conv_3x3"]}],
}


def batch(size: int, seed: int, device: torch.device):
    """A fixed synthetic batch of one slice (Sample layout)."""
    from nas_recon.data.sample import Sample

    g = torch.Generator().manual_seed(seed)
    target = torch.randn(1, 2, size, size, generator=g)
    mask = (torch.rand(1, 1, 1, size, generator=g) < 0.25).float()
    from nas_recon.physics import chan_to_complex, complex_to_chan, fft2c, ifft2c

    k = fft2c(chan_to_complex(target)) * mask[:, 0]
    x0 = complex_to_chan(ifft2c(k))
    return Sample(x0.to(device), target.to(device), complex_to_chan(k).to(device), mask.to(device),
                  torch.tensor([1.0]), ["b"], torch.tensor([0]), torch.tensor([4.0]), torch.tensor([1.0]))


def conv_macs(model, size: int) -> int:
    """Multiply-accumulates of all convs (thop) for one 2 x size x size input."""
    from thop import profile

    x = torch.zeros(1, 2, size, size)
    mask = torch.ones(1, 1, 1, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macs, _ = profile(model, inputs=(x, x, mask), verbose=False)
    return int(macs)


def run_variant(variant: str, size: int, steps: int, device: torch.device) -> dict:
    """Median seconds per step and peak RSS of one variant."""
    from nas_recon.search.supernet import arch_parameters, build_supernet, make_strategy
    from nas_recon.space import load_space

    torch.manual_seed(0)
    space = load_space("paper_a")
    b_w, b_a = batch(size, 1, device), batch(size, 2, device)
    times: list[float] = []
    info: dict = {}
    if variant == "derived":
        from nas_recon.genotype import genotype_from_dict
        from nas_recon.models import build_from_genotype

        net = build_from_genotype(genotype_from_dict(EXAMPLE))
        info["conv_macs"] = conv_macs(net, size)
        net = net.to(device)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        for _ in range(steps + 1):
            t = time.perf_counter()
            opt.zero_grad()
            F.l1_loss(net(b_w.input, b_w.kspace, b_w.mask), b_w.target).backward()
            opt.step()
            sync(device)
            times.append(time.perf_counter() - t)
    elif variant == "bare":
        strategy = make_strategy("darts", 3e-4, 5.0)
        net = build_supernet(space, strategy)
        info["conv_macs"] = conv_macs(net, size)
        net = net.to(device)
        alphas = arch_parameters(net)
        ids = {id(p) for p in alphas}
        weights = [p for p in net.parameters() if id(p) not in ids]
        opt_w = torch.optim.Adam(weights, 1e-3)
        opt_a = torch.optim.Adam(alphas, 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        for _ in range(steps + 1):
            t = time.perf_counter()
            opt_a.zero_grad()
            F.l1_loss(net(b_a.input, b_a.kspace, b_a.mask), b_a.target).backward()
            opt_a.step()
            opt_w.zero_grad()
            F.l1_loss(net(b_w.input, b_w.kspace, b_w.mask), b_w.target).backward()
            torch.nn.utils.clip_grad_norm_(weights, 5.0)
            opt_w.step()
            sync(device)
            times.append(time.perf_counter() - t)
    else:
        import pytorch_lightning as pl

        from nas_recon.engine.trainer import build_trainer, fit
        from nas_recon.search.run import SearchTask

        strategy = make_strategy("darts", 3e-4, 5.0)
        net = build_supernet(space, strategy)
        module = strategy.configure_oneshot_module(SearchTask(net, 1e-3, True))
        stamps: list[float] = []

        class Timer(pl.Callback):
            def on_train_batch_start(self, *a):
                sync(device)
                stamps.append(time.perf_counter())

            def on_train_batch_end(self, *a):
                sync(device)
                times.append(time.perf_counter() - stamps[-1])

        def loader_of(b):
            one = type(b)(*(f[0] for f in b))  # unbatched sample, re-batched by the DataLoader
            return torch.utils.data.DataLoader([one] * (steps + 1), batch_size=1)

        loader = {"train": loader_of(b_w), "val": loader_of(b_a)}
        fit(build_trainer(device, 1, "32", tempfile.mkdtemp(), [Timer()]), module, loader, None)
    steady = times[1:]  # first step is warm-up
    info.update({
        "variant": variant, "step_s": statistics.median(steady), "min_step_s": min(steady), "steps": len(steady),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })
    if device.type == "cuda":
        info["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--device", default="cpu")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    a = p.parse_args()
    device = torch.device(a.device)
    if a.variant:
        print(json.dumps(run_variant(a.variant, a.size, a.steps, device)))
        return
    res = {}
    for v in ("derived", "bare", "nni"):
        out = subprocess.run([sys.executable, __file__, "--variant", v, "--size", str(a.size), "--steps",
                              str(a.steps), "--device", a.device], check=True, capture_output=True, text=True)
        res[v] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"size {a.size}x{a.size}, batch 1, device {a.device}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, {a.steps} timed steps (median)")
    for v, r in res.items():
        extra = f", peak CUDA {r['peak_cuda_mb']:.0f} MB" if "peak_cuda_mb" in r else ""
        macs = f", conv MACs {r['conv_macs'] / 1e9:.2f} G" if "conv_macs" in r else ""
        print(f"  {v:8s} step {r['step_s']:.3f} s (min {r['min_step_s']:.3f}), peak RSS {r['peak_rss_mb']:.0f} MB"
              f"{extra}{macs}")
    d, b, n = res["derived"], res["bare"], res["nni"]
    print(f"  supernet/derived conv-MAC ratio: {b['conv_macs'] / d['conv_macs']:.2f}")
    print(f"  supernet DARTS iteration (2 fwd+bwd) / derived step (1 fwd+bwd): {b['step_s'] / d['step_s']:.2f}")
    print(f"  NNI-driven / bare PyTorch DARTS iteration: {n['step_s'] / b['step_s']:.3f}")


if __name__ == "__main__":
    main()
