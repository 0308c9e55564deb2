"""`nas-recon data`: build the offline demo dataset, check a data folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.progress import Progress

from nas_recon.cli.common import acceleration, add_verbose, console, nonneg_int, pos_int, seed_int, size_int
from nas_recon.defaults import SIZE
from nas_recon.errors import DataError
from nas_recon.physics.masks import MASK_KINDS


def register(sub: argparse._SubParsersAction) -> None:
    """Add `data demo`, `data undersample` and `data check`."""
    p = sub.add_parser("data", help="build the offline demo dataset, check data folders")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="{demo,undersample,check}")
    d = dsub.add_parser("demo", help="write the offline demo dataset (fastMRI-style train/val/test)")
    d.add_argument("--out", required=True, type=Path, help="output folder")
    d.add_argument("--source", default="mni152", help="mni152 (the template inside nilearn) or PATH.nii[.gz]")
    d.add_argument("--size", type=size_int, default=SIZE, help=f"image size (default {SIZE})")
    d.add_argument("--seed", type=seed_int, default=0, help="seed of the phase maps and noise")
    d.add_argument("--slices", type=pos_int, default=60, help="total slices kept (default 60)")
    d.add_argument("--coils", type=nonneg_int, default=0,
                   help="0 = single-coil (default); N >= 2: multi-coil files of N simulated coils (birdcage maps, "
                        "correlated noise; fastMRI's multi-coil layout with reconstruction_rss)")
    d.add_argument("--force", action="store_true", help="replace an existing output folder")
    add_verbose(d)
    d.set_defaults(func=run_demo)
    u = dsub.add_parser("undersample", help="fastMRI's test layout from fully sampled data (train/ and val/ "
                        "undersampled under one seeded mask per volume, no references; test/ copied): what "
                        "self-supervised training reads")
    u.add_argument("--data", required=True, type=Path, help="data folder with train/ and val/ (and test/)")
    u.add_argument("--out", required=True, type=Path, help="new output folder")
    u.add_argument("--acceleration", type=acceleration, default=4.0, help="acceleration of the masks (default 4)")
    u.add_argument("--mask-type", default="random", choices=MASK_KINDS)
    u.add_argument("--seed", type=seed_int, default=0, help="seed of the masks (one per volume, by file name)")
    add_verbose(u)
    u.set_defaults(func=run_undersample)
    c = dsub.add_parser("check", help="check one .h5 file or every .h5 file of a folder (layout, dtype, NaN/Inf)")
    c.add_argument("folder", type=Path, help="a folder of .h5 files, or one .h5 file")
    c.add_argument("--size", type=size_int, default=SIZE, help="crop size the files must allow")
    add_verbose(c)
    c.set_defaults(func=run_check)


def run_demo(args: argparse.Namespace) -> int:
    """Build the demo dataset with a progress bar."""
    from nas_recon.data.demo import build_demo

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("building demo volumes", total=None)
        manifest = build_demo(
            args.out, args.source, args.size, args.seed, args.slices, force=args.force,
            progress=lambda i, n: bar.update(task, completed=i, total=n), coils=args.coils,
        )
    counts: dict[str, int] = {}
    for name, info in manifest["files"].items():
        split = name.split("/")[0]
        counts[split] = counts.get(split, 0) + len(info["slices"])
    parts = ", ".join(f"{k}: {v} slices" for k, v in counts.items())
    console.print(f"demo dataset written to {args.out} ({parts})")
    return 0


def run_undersample(args: argparse.Namespace) -> int:
    """Write the undersampled folder with a progress bar."""
    from nas_recon.data.undersample import undersample_folder

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("undersampling volumes", total=None)
        manifest = undersample_folder(args.data, args.out, args.acceleration, args.mask_type, args.seed,
                                      progress=lambda i, n: bar.update(task, completed=i, total=n))
    n = {s: sum(k.startswith(s + "/") for k in manifest["files"]) for s in ("train", "val", "test")}
    console.print(f"{args.out}: train/ {n['train']} and val/ {n['val']} volumes at {args.acceleration:g}x "
                  f"({args.mask_type} masks, one per volume, no references); test/ {n['test']} fully sampled")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Check all volumes of a folder."""
    from nas_recon.data.dataset import list_volumes
    from nas_recon.data.hdf5 import inspect_volume

    files = [args.folder] if args.folder.is_file() else list_volumes(args.folder)
    total, coils, first, padded = 0, set(), None, 0
    for f in files:
        info = inspect_volume(f, min_size=args.size, check_values=True)
        padded += info.padding is not None and info.padding != (0, info.width)
        if first is not None and bool(info.coils) != bool(first.coils):
            kinds = {True: "multi-coil", False: "single-coil"}
            raise DataError(f"{f}: {kinds[bool(info.coils)]}, but {first.path.name} in the same folder is "
                            f"{kinds[bool(first.coils)]}; keep one kind per folder")
        first = first or info
        total += info.num_slices
        coils.add(info.coils)
    if total == 0:
        raise DataError(f"{args.folder}: no slices")
    kind = "single-coil" if coils == {0} else (f"multi-coil, {min(coils)}" + (f"-{max(coils)}" if len(coils) > 1
                                                                                else "") + " coils")
    pad = f"; {padded} with zero-padded k-space columns (ISMRMRD header)" if padded else ""
    console.print(f"{args.folder}: {len(files)} volumes ({kind}), {total} slices, all valid{pad}")
    return 0
