"""Options declared once: a config dataclass's fields carry their command-line flag, type, choices and help.

`option(...)` declares a field; the CLI builds its parser from the fields (nas_recon.cli.common.add_options)
and the config from the parsed arguments (config_from_args), so a default or a list of choices lives in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, field
from typing import Any

CLI = "nas_recon_cli"  # the metadata key


def option(default: Any = MISSING, help: str = "", *, kind: str | None = None,  # noqa: A002 - argparse's name
           choices: Sequence[str] | None = None, zero_is_none: bool = False, flag: bool = False,
           factory: Callable[[], Any] | None = None, required: bool = False) -> Any:
    """A dataclass field that is also a command-line option.

    kind: the argparse type by name (pos_int, nonneg_int, pos_float, nonneg_float, fraction, share, seed_int, size_int,
    path, str); zero_is_none: the flag's 0 means the field's None ("0 = off"); flag: a store_true switch.
    """
    meta = {CLI: {"help": help, "kind": kind, "choices": tuple(choices) if choices else None,
                  "zero_is_none": zero_is_none, "flag": flag, "required": required}}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def cli_meta(f: Field) -> dict[str, Any] | None:
    """The option metadata of a dataclass field (None: not a command-line option)."""
    return f.metadata.get(CLI)
