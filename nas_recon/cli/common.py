"""Shared CLI pieces: the parser class, consoles and device choice."""

from __future__ import annotations

import argparse
import math
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
acceleration = _number(float, lambda v: 1 <= v <= 64, "an acceleration in [1, 64]")
