"""An exclusive lock on a run folder, so two runs never write into one folder at the same time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nas_recon.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; runs there are not guarded
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".nas-recon.lock"


@contextmanager
def run_lock(folder: Path | str, kind: str | None = None) -> Iterator[Path]:
    """Hold an exclusive flock on FOLDER/.nas-recon.lock; a second holder gets a clear error.

    With `kind`, a folder nas-recon made as another kind of output is refused before anything is created.

    The kernel drops the lock when the holding process ends in any way (crash, kill -9), so a lock left
    by a dead run is never mistaken for a live one. The empty file stays; it is never rewritten.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out: {folder} exists and is not a folder")
    if kind is not None:
        from nas_recon.outputs import check_run_folder

        check_run_folder(folder, kind)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(f"{folder}: in use by another running nas-recon; wait for it to finish or "
                                  "use another --out") from None
        yield path
    finally:
        os.close(fd)
