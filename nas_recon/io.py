"""Files written whole or not at all: a temp file in the same folder, renamed over the target."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode open() gives a new file now (0666 less the umask)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """The mode mkdir() gives a new folder now (0777 less the umask)."""
    return 0o777 & ~_umask()


@contextmanager
def atomic_path(path: Path) -> Iterator[str]:
    """Yield a temp path beside `path`; on success rename it over `path`, on any error remove it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, file_mode())  # mkstemp makes 0600; outputs get the mode any new file gets (0644 under umask 022)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite a CSV atomically from rows (nothing when there are none)."""
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())
