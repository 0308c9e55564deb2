"""Where the shipped data files (search spaces, recipes) live."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

from nas_recon.errors import ConfigError


def shipped_dir(name: str) -> Path:
    """Folder of shipped data files `name` (source checkout first, then the installed share dir)."""
    candidates = [
        Path(__file__).resolve().parent.parent / name,
        Path(sys.prefix) / "share" / "nas-recon" / name,
    ]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


def load_shipped_toml(name_or_path: str, folder: str, option: str, what: str) -> tuple[dict[str, Any], Path]:
    """TOML by shipped name (folder/NAME.toml) or by path; errors name the option or the file."""
    path = Path(name_or_path)
    bare = "/" not in name_or_path and path.suffix != ".toml"  # a shipped name, even if a folder of that name is here
    if bare:
        path = shipped_dir(folder) / f"{name_or_path}.toml"
        if not path.is_file():
            names = ", ".join(sorted(p.stem for p in shipped_dir(folder).glob("*.toml")))
            raise ConfigError(f"{option}: unknown {what} '{name_or_path}', expected a path or one of {names}")
    if not path.is_file():
        raise ConfigError(f"{path}: {what} file not found")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what} file ({e.strerror or e})") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not valid TOML (byte 0x{raw[e.start]:02x} on line {line} is not UTF-8; TOML "
                          "files are UTF-8)") from None
    try:
        return tomllib.loads(text), path
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from e
