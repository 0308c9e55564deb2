"""Benchmark (not a test): training-step and inference throughput per model, and what each CPU setting buys.

Part 1 (settings ladder, each row its own process because the allocator setting is process-wide): the
searched example cell and dccnn-3, a training step at 64 x 64, batch 4 (Adam, L1), under
  before       PyTorch defaults (NCHW, glibc's default malloc thresholds, denormals kept), PyTorch's init
  +malloc      nas_recon.runtime.tune_malloc()
  +denormal    torch.set_flush_denormal(True)
  +init        the scaled initialisation of nas_recon.models.init (searched family only)
  +cl          weights in channels_last (nas_recon.device.place) = what every command now runs
Part 2 (everything on): train-step and inference images/s per model at 64 x 64 (batch 4) and 320 x 320
(batch 1), achieved GFLOP/s (2 x conv MACs per image forward; a training step counted as 3 forwards) and
the fraction of this CPU's fp32 peak (cores x 2 AVX2 FMA units x 8 lanes x 2 flops x clock).

Usage: python bench/throughput.py [--steps 5] [--sizes 64 320]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

EXAMPLE = "search_spaces/examples/paper_a_example.json"
MODELS = ["searched", "dccnn-3", "modl-3", "rdn-3", "unet"]
LADDER = ["before", "+malloc", "+denormal", "+init", "+cl"]


def cpu_peak_gflops() -> tuple[float, str]:
    """fp32 peak of the cores this process may use, from the clock in /proc/cpuinfo (AVX2 FMA assumed)."""
    import torch

    mhz, name = 0.0, "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":")[1])
            if line.startswith("model name") and name == "unknown CPU":
                name = line.split(":")[1].strip()
    except OSError:
        pass
    cores = torch.get_num_threads()
    return cores * 2 * 8 * 2 * mhz / 1e3, f"{name}, {cores} threads, {mhz:.0f} MHz"


def build(name: str, init: str):
    from nas_recon.genotype import load_genotype
    from nas_recon.models.registry import ModelSpec, build_model
    from nas_recon.models.searched import build_from_genotype

    if name == "searched":
        return build_from_genotype(load_genotype(EXAMPLE), init=init)
    return build_model(ModelSpec(name))


def time_steps(model, size: int, batch: int, steps: int, train: bool) -> float:
    """Median seconds of one step (after 2 warm-up steps)."""
    import torch

    x = torch.randn(batch, 2, size, size)
    mask = (torch.rand(batch, 1, 1, size) > 0.5).float()
    k = x * mask
    opt = torch.optim.Adam(model.parameters(), 1e-3) if train else None
    model.train(train)

    def one() -> None:
        if train:
            loss = (model(x, k, mask) - x).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            with torch.inference_mode():
                model(x, k, mask)

    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        one()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def ladder_child(model: str, level: str, steps: int) -> dict:
    """One rung of the ladder in this (fresh) process."""
    import torch

    from nas_recon import runtime
    from nas_recon.device import place

    rung = LADDER.index(level)
    if rung >= 1:
        runtime.tune_malloc()
    torch.set_flush_denormal(rung >= 2)
    torch.manual_seed(0)
    m = build(model, "scaled" if rung >= 3 else "torch")
    if rung >= 4:
        m = place(m, torch.device("cpu"))
    t0 = resource.getrusage(resource.RUSAGE_SELF)
    step = time_steps(m, 64, 4, steps, True)
    t1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"model": model, "level": level, "step_ms": step * 1e3, "user_s": t1.ru_utime - t0.ru_utime,
            "sys_s": t1.ru_stime - t0.ru_stime}


def models_child(size: int, steps: int) -> list[dict]:
    """Part 2 in this process, every setting on."""
    import torch

    from nas_recon import runtime
    from nas_recon.cost import conv_macs
    from nas_recon.device import place

    runtime.configure()
    batch = 4 if size <= 64 else 1
    rows = []
    for name in MODELS:
        torch.manual_seed(0)
        m = build(name, "scaled")
        macs = conv_macs(m, size)
        m = place(m, torch.device("cpu"))
        tr = time_steps(m, size, batch, steps, True)
        inf = time_steps(m, size, batch, steps, False)
        rows.append({"model": name, "size": size, "batch": batch, "gmacs": macs / 1e9,
                     "train_img_s": batch / tr, "infer_img_s": batch / inf,
                     "train_gflops": 3 * 2 * macs * batch / tr / 1e9, "infer_gflops": 2 * macs * batch / inf / 1e9})
    return rows


def child(args: list[str]) -> None:
    kind = args[0]
    if kind == "ladder":
        print(json.dumps(ladder_child(args[1], args[2], int(args[3]))))
    else:
        print(json.dumps(models_child(int(args[1]), int(args[2]))))


def run_child(*args: str) -> dict | list:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 320])
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child)
        return
    peak, cpu = cpu_peak_gflops()
    print(f"CPU: {cpu}; fp32 peak {peak:.0f} GFLOP/s (AVX2 FMA)\n")
    print("Part 1: training step at 64 x 64, batch 4 (median of", a.steps, "steps)")
    print(f"{'model':10s} {'settings':10s} {'step ms':>8s} {'vs before':>9s} {'user s':>7s} {'sys s':>6s}")
    for model in ("searched", "dccnn-3"):
        base = None
        for level in LADDER:
            if level == "+init" and model != "searched":
                continue
            r = run_child("ladder", model, level, str(a.steps))
            base = base or r["step_ms"]
            print(f"{model:10s} {level:10s} {r['step_ms']:8.1f} {base / r['step_ms']:8.2f}x "
                  f"{r['user_s']:7.2f} {r['sys_s']:6.2f}", flush=True)
    print("\nPart 2: every setting on")
    print(f"{'model':10s} {'size':>5s} {'GMACs':>7s} {'train img/s':>11s} {'infer img/s':>11s} "
          f"{'train GFLOP/s':>13s} {'infer GFLOP/s':>13s} {'% peak (inf)':>12s}")
    for size in a.sizes:
        for r in run_child("models", str(size), str(a.steps)):
            print(f"{r['model']:10s} {r['size']:5d} {r['gmacs']:7.2f} {r['train_img_s']:11.2f} "
                  f"{r['infer_img_s']:11.2f} {r['train_gflops']:13.1f} {r['infer_gflops']:13.1f} "
                  f"{100 * r['infer_gflops'] / peak:11.1f}%", flush=True)


if __name__ == "__main__":
    main()
