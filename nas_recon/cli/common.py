"""Shared CLI pieces: the parser class, consoles and device choice."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.markup import escape

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
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="compute device")
