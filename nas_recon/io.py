"""Files written whole or not at all: a temp file in the same folder, renamed over the target."""

from __future__ import annotations

import csv
import io
import json
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as e:  # name the output, not the temp file beside it
        raise OSError(e.errno, f"cannot write the output here ({e.strerror or e})", str(path)) from None
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


def save_array(path: Path, array: Any) -> None:
    """np.save atomically (never a half-written .npy)."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite a CSV atomically from rows (nothing when there are none)."""
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def check_writable(folder: Path, option: str = "--out") -> None:
    """Refuse an output whose folder cannot be made or written (read-only, no permission), before any work.

    Probes the nearest folder that exists with a temp file (removed at once): permission bits alone do not show
    read-only mounts, and root passes every permission check.
    """
    from nas_recon.errors import ConfigError

    base = Path(folder).absolute()
    while not base.exists():
        base = base.parent
    if not base.is_dir():
        raise ConfigError(f"{option}: {base} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".nas-recon-probe.", dir=base)
    except OSError as e:
        raise ConfigError(f"{option}: cannot write into {base} ({e.strerror or e}); choose another output") from None
    os.close(fd)
    os.unlink(probe)


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (a Ctrl-C then lands after it, never inside it)."""
    import signal
    import threading

    held = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def swap_folder(new: Path, target: Path) -> None:
    """Put folder NEW in TARGET's place: the old TARGET is moved aside, NEW renamed in, then the old one removed.

    Signals wait until the swap is done, so an interrupt leaves either the old folder or the new one, whole.
    """
    import shutil

    with uninterrupted():
        if target.exists():
            aside = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(aside)
            try:
                new.rename(target)
            except BaseException:
                aside.rename(target)
                raise
        else:
            aside = None
            new.rename(target)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def read_strict_json(path: Path) -> Any:
    """A JSON file parsed strictly (NaN and Infinity refused); ValueError names what is wrong in one line."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"not strict JSON ({name} is not a number JSON allows)")

    try:
        return json.loads(path.read_text(), parse_constant=no_constant)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"unreadable ({str(e).splitlines()[0][:80]})") from None
