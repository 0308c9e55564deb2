"""Where the shipped data files (search spaces, recipes) live."""

from __future__ import annotations

import sys
from pathlib import Path


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
