"""A run folder's record on resume: one rule for every kind of run (search, retrain, pretrain)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas_recon.data.identity import describe_data, same_data
from nas_recon.errors import ConfigError


def check_unchanged(source: Path, saved: dict[str, Any], now: dict[str, Any], keys: Sequence[str],
                    defaults: dict[str, Any] | None = None, kind: str = "run") -> None:
    """--resume: refuse when a setting that shaped the earlier epochs changed (the record would misdescribe them).

    `saved` is what `source` recorded, `now` this call's settings; a key an older record lacks had its value in
    `defaults`. The data is compared by content (./data, an absolute path and a symlink to it are the same data);
    a changed mapping names its changed sub-key.
    """
    defaults = defaults or {}
    for key in keys:
        old, new = saved.get(key, defaults.get(key)), now.get(key, defaults.get(key))
        if key == "data":
            if not same_data(old, new):
                raise ConfigError(f"--resume: the data is not what this {kind} trained on (was {describe_data(old)}, "
                                  f"now {describe_data(new)}; from {source}); resume on the same data or use another "
                                  "--out")
            continue
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            sub = next(k for k in sorted({*old, *new}) if old.get(k) != new.get(k))
            key, old, new = f"{key}.{sub}", old.get(sub), new.get(sub)
        raise ConfigError(f"--resume: setting '{key}' was {old!r}, now {new!r} (from {source}); resume with the same "
                          "settings or use another --out")
