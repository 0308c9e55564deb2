"""Entry point of the `nas-recon` command."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import traceback

from rich.markup import escape

from nas_recon import __version__
from nas_recon.cli.common import Parser, add_verbose, console, err_console
from nas_recon.errors import ConfigError, NasReconError
from nas_recon.runtime import configure

# Each command module has register(subparsers); its parsers set `func`.
MODULES = {"data": "data", "search": "search", "select": "search", "retrain": "train", "pretrain": "train",
           "evaluate": "train", "reconstruct": "train", "export": "train", "cost": "cost", "sample": "cost",
           "report": "report", "demo": "demo", "ablate": "demo"}
COMMANDS = ["data", "search", "select", "retrain", "pretrain", "evaluate", "reconstruct", "export", "cost", "sample",
            "report", "demo", "ablate"]


def build_parser() -> Parser:
    """The full argument parser."""
    parser = Parser(prog="nas-recon", description="DARTS search of compressed-sensing MRI reconstruction networks")
    parser.add_argument("--version", action="version", version=f"nas-recon {__version__}")
    add_verbose(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>", parser_class=Parser)
    for module in dict.fromkeys(MODULES[c] for c in COMMANDS):
        importlib.import_module(f"nas_recon.cli.{module}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return 2."""
    quiet_other_ranks()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    configure()
    verbose = getattr(args, "verbose", False) or "--verbose" in (sys.argv[1:] if argv is None else argv)
    term = SigtermAsInterrupt()
    try:
        with term:
            check_parallel(args.command)
            return int(args.func(args) or 0)
    except (NasReconError, OSError, MemoryError) as e:
        if verbose:
            err_console.print(escape(traceback.format_exc()))
        err_console.print(f"error: {escape(describe(e))}")
        return 2
    except KeyboardInterrupt:
        what = "terminated (SIGTERM)" if term.received else "interrupted"
        err_console.print(f"{what}: {interrupt_advice(args.command)}")
        return 143 if term.received else 130


PARALLEL = ("search", "retrain")  # commands that run data-parallel under torchrun


def check_parallel(command: str) -> None:
    """Under torchrun (WORLD_SIZE > 1) only data-parallel commands may run: the others would race on their outputs."""
    if os.environ.get("WORLD_SIZE", "1") not in ("", "1") and command not in PARALLEL:
        raise ConfigError(f"{command}: runs as one process; start it without torchrun (WORLD_SIZE="
                          f"{os.environ['WORLD_SIZE']}); data-parallel: {', '.join(PARALLEL)}")


def quiet_other_ranks() -> None:
    """Under torchrun every rank but 0 prints nothing (rank 0 speaks for the run)."""
    if os.environ.get("RANK", "0") not in ("", "0"):
        for c in (console, err_console):
            c.file = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process


def interrupt_advice(command: str) -> str:
    """What an interrupted command leaves and how to go on (only search and retrain have --resume)."""
    if command in ("search", "retrain"):
        return "the run folder keeps its last checkpoint; continue with --resume"
    if command == "select":
        return "the study keeps every finished trial and the trials' checkpoints; run the same command again"
    if command in ("demo", "ablate"):
        return "finished stages are kept and the current one keeps its last checkpoint; rerun the same command"
    return "nothing half-written was left (outputs are written whole or not at all); run the command again"


class SigtermAsInterrupt:
    """While active, SIGTERM (a scheduler's preemption, `kill`) stops a run the way Ctrl-C does."""

    def __init__(self) -> None:
        self.received = False
        self.installed = False
        self.previous: object = None

    def handle(self, signum: int, frame: object) -> None:
        self.received = True
        raise KeyboardInterrupt

    def __enter__(self) -> SigtermAsInterrupt:
        if threading.current_thread() is threading.main_thread():  # signal.signal works there only
            self.previous = signal.signal(signal.SIGTERM, self.handle)
            self.installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.installed:  # None: a handler not set from Python; the default is the nearest we can restore
            signal.signal(signal.SIGTERM, signal.SIG_DFL if self.previous is None else self.previous)  # type: ignore[arg-type]


def describe(e: BaseException) -> str:
    """One line for a user error; file-system errors name the path and what went wrong."""
    if isinstance(e, OSError) and e.filename is not None:
        what = e.strerror or type(e).__name__
        other = f" -> {e.filename2}" if e.filename2 is not None else ""
        return f"{e.filename}{other}: {what}"
    if isinstance(e, MemoryError):
        return f"out of memory{f' ({e})' if str(e) else ''}: use smaller crops, batches or --size"
    return str(e) or type(e).__name__


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
