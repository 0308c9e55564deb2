"""Shared CLI pieces: the parser class, consoles and device choice."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from nas_recon.defaults import DEVICES
from nas_recon.options import cli_meta

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        err_console.print(f"{escape(self.prog)}: error: {escape(message)} (see --help)")
        sys.exit(2)


def add_verbose(p: argparse.ArgumentParser) -> None:
    """The --verbose flag every command takes."""
    p.add_argument("--verbose", action="store_true", help="show full tracebacks on errors")


def add_device(p: argparse.ArgumentParser) -> None:
    """The --device flag."""
    p.add_argument("--device", default="auto", choices=DEVICES, help="compute device")


def add_devices(p: argparse.ArgumentParser) -> None:
    """The --devices flag of the data-parallel commands."""
    p.add_argument("--devices", type=pos_int, default=1,
                   help="data-parallel processes on this machine (one per GPU; gloo processes on the CPU), started "
                        "as torchrun would; for several machines run torchrun yourself (README)")


def _number(kind: type, test, expect: str):
    """An argparse type: parse with `kind`, then require test(value); the message says what was expected."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expect}, got {text!r}") from None
        if kind is float and not math.isfinite(value) or not test(value):
            raise argparse.ArgumentTypeError(f"expected {expect}, got {text!r}")
        return value

    parse.__name__ = expect  # argparse names the type in some messages
    return parse


pos_int = _number(int, lambda v: v > 0, "a positive integer")
nonneg_int = _number(int, lambda v: v >= 0, "an integer >= 0")
seed_int = _number(int, lambda v: 0 <= v < 2**32, "a seed in [0, 2^32)")
size_int = _number(int, lambda v: 16 <= v <= 4096, "an image size in [16, 4096]")
pos_float = _number(float, lambda v: v > 0, "a finite number > 0")
nonneg_float = _number(float, lambda v: v >= 0, "a finite number >= 0")
fraction = _number(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")
share = _number(float, lambda v: 0 <= v < 1, "a share in [0, 1)")
acceleration = _number(float, lambda v: 1 <= v <= 64, "an acceleration in [1, 64]")


KINDS = {"pos_int": pos_int, "nonneg_int": nonneg_int, "seed_int": seed_int, "size_int": size_int,
         "pos_float": pos_float, "nonneg_float": nonneg_float, "fraction": fraction, "share": share,
         "path": Path, "str": str,
         None: None}


def add_options(p: argparse.ArgumentParser, config: type, overrides: bool = False) -> None:
    """One --flag per option field of the dataclass `config` (nas_recon.options.option), in field order;
    `overrides`: each flag defaults to None, a value given on the command line over a file's (overrides_from_args)."""
    for f in dataclasses.fields(config):
        meta = cli_meta(f)
        if meta is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        if meta["flag"]:
            p.add_argument(flag, action="store_true", help=meta["help"] or None)
            continue
        kw: dict[str, Any] = {"type": KINDS[meta["kind"]], "help": meta["help"] or None}
        if meta["choices"]:
            kw["choices"] = list(meta["choices"])
        if meta["required"]:
            kw["required"] = True
        else:
            kw["default"] = None if overrides else f.default
        p.add_argument(flag, **{k: v for k, v in kw.items() if v is not None or k == "default"})


def overrides_from_args(config: type, args: argparse.Namespace) -> dict[str, Any]:
    """The option fields of `config` given on the command line (flags added with overrides=True)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(config)
            if cli_meta(f) is not None and getattr(args, f.name) is not None}


def config_from_args(config: type, args: argparse.Namespace, **extra: Any) -> Any:
    """The dataclass `config` from parsed arguments: option fields from their flags (0 -> None where declared,
    paths as strings), other fields from `extra` or their defaults."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        meta = cli_meta(f)
        if meta is None:
            continue
        v = getattr(args, f.name)
        if meta["zero_is_none"] and v == 0:
            v = None
        values[f.name] = str(v) if isinstance(v, Path) else v
    return config(**values, **extra)


def check_ranks(devices: int, batch_size: int | None, device: str) -> None:
    """Before any rank starts: at most one rank per GPU (on a CPU, per core), and a global batch they can split."""
    import os

    from nas_recon.errors import ConfigError

    cuda = device == "cuda"
    if device == "auto":
        import torch

        cuda = torch.cuda.is_available()
    if cuda:
        import torch

        have, what = torch.cuda.device_count(), "GPU(s)"
    else:
        have = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        what = "CPU core(s)"
    if devices > have:
        raise ConfigError(f"--devices {devices}: this machine has {have} {what}; start at most one rank per "
                          f"{'GPU' if cuda else 'core'} (several machines: torchrun, README)")
    if batch_size is not None and batch_size % devices:
        raise ConfigError(f"--batch-size {batch_size} cannot be split across {devices} ranks: give a multiple of "
                          f"{devices} (the global batch, as in one process)")


def relaunch(argv: list[str], devices: int) -> int:
    """Run this command again as `devices` ranks on this machine (torchrun's environment); rank 0's exit status.

    Rank 0 prints, the others are silent; when one rank fails the others are stopped (they would wait for it). A
    rank killed from outside (kill -9, the OOM killer) is named in one line, in place of the others' reports of the
    broken connection.
    """
    import os
    import signal
    import socket
    import subprocess
    import sys
    import threading
    import time

    from nas_recon.errors import ConfigError

    if "WORLD_SIZE" in os.environ:
        raise ConfigError("--devices: already running under torchrun (WORLD_SIZE is set); give torchrun's "
                          "--nproc-per-node instead")
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--devices":
            skip = True
        elif not a.startswith("--devices="):
            rest.append(a)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    threads = str(max(1, (os.cpu_count() or 1) // devices))
    procs = []
    errors: list[list[str]] = [[] for _ in range(devices)]
    readers = []
    for rank in range(devices):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(devices),
               "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(devices)}
        env.setdefault("OMP_NUM_THREADS", threads)
        p = subprocess.Popen([sys.executable, "-m", "nas_recon", *rest], env=env, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        t = threading.Thread(target=lambda p=p, buf=errors[rank]: buf.extend(p.stderr), daemon=True)
        t.start()
        readers.append(t)
    killed: tuple[int, int] | None = None  # (rank, signal) of a rank killed from outside
    stopped = False
    try:
        while None in [p.poll() for p in procs]:  # every rank polled each pass
            for rank, p in enumerate(procs):
                if p.returncode is not None and p.returncode < 0 and killed is None and not stopped:
                    killed = (rank, -p.returncode)
            if any(p.returncode not in (None, 0) for p in procs):
                stopped = True
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
            time.sleep(0.2)
    except KeyboardInterrupt:  # Ctrl-C reached every rank too; SIGTERM (a scheduler's) only this process
        stopped = True
        deadline = time.time() + 2.0
        while any(p.poll() is None for p in procs) and time.time() < deadline:
            time.sleep(0.1)
        for p in procs:  # pass the stop on: each rank stops as on Ctrl-C, keeping its last checkpoint
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait()
    for t in readers:
        t.join(timeout=5)
    if killed is not None:
        rank, sig = killed
        name = signal.Signals(sig).name if sig in signal.Signals.__members__.values() else str(sig)
        err_console.print(f"error: rank {rank} of {devices} was killed ({name}); the others were stopped; the run "
                          "folder keeps its last checkpoint: continue with --resume")
        return 2
    sys.stderr.write("".join(errors[0]))
    codes = [p.returncode if p.returncode >= 0 else 128 - p.returncode for p in procs]  # -15: killed, 143
    return codes[0] or max(codes)
