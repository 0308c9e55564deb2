"""`nas-recon cost` and `nas-recon sample`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from nas_recon.cli.common import add_device, add_verbose, console, fraction, pos_float, pos_int, seed_int, size_int
from nas_recon.defaults import SIZE


def register(sub: argparse._SubParsersAction) -> None:
    """Add `cost` and `sample`."""
    p = sub.add_parser("cost", help="params, FLOPs (conv MACs) and latency of a model")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--genotype", type=Path, help="genotype JSON")
    g.add_argument("--model", help="baseline name (zero-filled, tv, unet, dccnn-N, modl-N, rdn-N)")
    g.add_argument("--reference", action="store_true", help="the reference report: paper baselines + examples")
    p.add_argument("--size", type=size_int, default=SIZE, help="image height (and width unless --width)")
    p.add_argument("--width", type=size_int, help="image width (default --size), e.g. --size 640 --width 368")
    p.add_argument("--coils", type=pos_int, help="multi-coil input of this many coils (fastMRI knee: 15)")
    p.add_argument("--repeats", type=pos_int, default=10, help="timed runs for the latency median")
    p.add_argument("--channels", type=pos_int, help="--model at another width (channels)")
    p.add_argument("--flops-target", help="--model at the width nearest this FLOPs target: G (conv MACs at 320 x 320) "
                   "or like:MODEL; the width is printed")
    p.add_argument("--flops-band", type=fraction, default=0.05, help="with --flops-target: the band (default 0.05)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--write", type=Path, help="with --reference: write STEM.md and STEM.json")
    add_device(p)
    add_verbose(p)
    p.set_defaults(func=run_cost)

    s = sub.add_parser("sample", help="random genotypes (the random-architecture control)")
    s.add_argument("--space", default="paper_a")
    s.add_argument("--n", type=pos_int, default=5)
    s.add_argument("--seed", type=seed_int, default=0)
    s.add_argument("--out", required=True, type=Path, help="folder for random_XX.json")
    s.add_argument("--flops-like", type=Path, help="keep only cells within --tolerance of this genotype's FLOPs")
    s.add_argument("--tolerance", type=pos_float, default=0.1)
    s.add_argument("--flops-target", help="networks inside this FLOPs band: G (conv MACs at 320 x 320) or like:MODEL "
                   "(a macro space's width is set to meet it)")
    s.add_argument("--flops-band", type=fraction, default=0.05, help="with --flops-target: the band (default 0.05)")
    add_verbose(s)
    s.set_defaults(func=run_sample)


def run_cost(args: argparse.Namespace) -> int:
    """Compute and print the cost."""
    from nas_recon.cost import model_cost
    from nas_recon.device import resolve_device
    from nas_recon.errors import ConfigError
    from nas_recon.genotype import load_genotype
    from nas_recon.memory import check_model_fits
    from nas_recon.models.registry import ModelSpec, build_model, parse_name, spec_for_genotype

    if args.write and not args.reference:
        raise ConfigError("--write: only with --reference (a single model's cost is printed, not written)")
    if args.reference:
        from nas_recon.report.costs import reference_report, write_reference_report

        if args.write:
            paths = write_reference_report(args.write, args.size)
            console.print("wrote " + ", ".join(str(p) for p in paths))
            return 0
        data, md = reference_report(args.size)
        console.print(json.dumps(data, indent=1) if args.json else md, soft_wrap=True)
        return 0
    if args.size < 16:
        raise ConfigError(f"--size: expected at least 16, got {args.size}")
    device = resolve_device(args.device)
    if args.model == "tv":
        result = {"model": "tv", "params": 0, "flops": None, "latency_ms": None, "device": str(device),
                  "note": "iterative solver: FLOPs not applicable"}
    else:
        if (args.channels or args.flops_target) and not args.model:
            flag = "channels" if args.channels else "flops-target"
            raise ConfigError(f"--{flag}: sets a --model's width; a genotype carries its own")
        if args.channels and args.flops_target:
            raise ConfigError("--channels and --flops-target: give one (the target decides the width)")
        if args.genotype:
            spec = spec_for_genotype(load_genotype(args.genotype))
            name = str(args.genotype)
        else:
            parse_name(args.model)
            spec, name = ModelSpec(args.model), args.model
            channels = args.channels
            if args.flops_target:
                from nas_recon.search.budget import parse_flops_target, width_for

                channels = width_for(args.model, parse_flops_target(args.flops_target, args.flops_band))
            if channels:
                if args.model.startswith("varnet") or args.model == "zero-filled":
                    raise ConfigError(f"--channels: '{args.model}' has a fixed configuration")
                spec, name = ModelSpec(args.model, channels=channels), f"{args.model} (width {channels})"
        width = args.width or args.size
        check_model_fits("cost", spec, 1, args.size, width, device, False, "use a smaller --size or model")
        c = model_cost(build_model(spec), args.size, device, args.repeats, coils=args.coils or 0, width=width)
        result = {"model": name, **c, "device": str(device), "size": args.size, "width": width,
                  "coils": args.coils or 0}
    if args.json:
        print(json.dumps(result))
        return 0
    shape = f"{args.size} x {args.width or args.size}" + (f" x {args.coils} coils" if args.coils else "")
    t = Table(title=f"cost at {shape}")
    for col in ("model", "params", "FLOPs (G MACs)", "latency (ms/slice)", "device"):
        t.add_column(col, justify="right")
    flops = "n/a" if result["flops"] is None else f"{result['flops'] / 1e9:.3f}"
    lat = "n/a" if result["latency_ms"] is None else f"{result['latency_ms']:.1f}"
    t.add_row(result["model"], f"{result['params']:,}", flops, lat, result["device"])
    console.print(t)
    return 0


def run_sample(args: argparse.Namespace) -> int:
    """Write random genotypes."""
    from nas_recon.errors import ConfigError
    from nas_recon.genotype import load_genotype
    from nas_recon.select.sample import check_sample_outputs, sample_genotypes, write_samples
    from nas_recon.space import load_space

    if args.flops_like and args.flops_target:
        raise ConfigError("--flops-like and --flops-target: give one")
    check_sample_outputs(args.out, args.n, args.seed)  # decided before any draw
    like = load_genotype(args.flops_like) if args.flops_like else None
    band = None
    if args.flops_target:
        from nas_recon.search.budget import parse_flops_target

        band = parse_flops_target(args.flops_target, args.flops_band)
    gs = sample_genotypes(load_space(args.space), args.n, args.seed, like, args.tolerance, band=band)
    paths = write_samples(gs, args.out)
    for p, g in zip(paths, gs, strict=True):
        console.print(f"{p}: {g.summary() if g.version == 2 else g.describe()}", soft_wrap=True)
    return 0
