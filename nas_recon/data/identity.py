"""Data known by content: resolved folders and per-file fingerprints, not the string a user typed.

A file's fingerprint is its size, its modification time (ns) and a SHA-256 of a cheap sample of its bytes
(SAMPLES evenly spaced blocks of BLOCK bytes, first and last included). Reading a sample keeps this fast on the
fastMRI training set (tens of GB); size + sample catches a different or re-encoded file, and the modification
time catches an edit in place between two samples (h5py's writes update it). Two uses, two strengths:
- *identity* ("is this run's training data the data given now?"): size and sample must agree, the mtime may
  differ (a copy with `cp` or `rsync` without times is still the same data);
- *cache validity* (report's metric cache): size, sample and mtime must all agree.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

SAMPLES = 16
BLOCK = 64 << 10  # 64 KiB per sampled block: 1 MiB read per file at most
DATA_SUFFIXES = (".h5", ".hdf5")


def file_fingerprint(path: Path) -> dict[str, Any]:
    """{size, mtime_ns, sample}: see the module docstring."""
    st = path.stat()
    h = hashlib.sha256(str(st.st_size).encode())
    with path.open("rb") as f:
        if st.st_size <= SAMPLES * BLOCK:
            h.update(f.read())
        else:
            step = (st.st_size - BLOCK) / (SAMPLES - 1)
            for i in range(SAMPLES):
                f.seek(int(round(i * step)))
                h.update(f.read(BLOCK))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sample": h.hexdigest()[:32]}


def data_files(root: Path) -> list[Path]:
    """The HDF5 files of a data folder (recursively: train/, val/, test/), or the file itself."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix in DATA_SUFFIXES and p.is_file())


def data_record(root: str | Path, parts: tuple[str, ...] = ()) -> dict[str, Any]:
    """{folder (resolved), files: {relative path: fingerprint}, digest}: what a run's data was.

    `parts`: only these subfolders of ROOT (e.g. train/ and val/ for a retraining; test/ may change freely).
    """
    root = Path(root)
    base = root.parent if root.is_file() else root
    paths = [p for part in parts for p in data_files(root / part)] if parts else data_files(root)
    files = {p.relative_to(base).as_posix(): file_fingerprint(p) for p in paths}
    return {"folder": str(root.resolve()), "files": files, "digest": content_digest(files)}


def content_digest(files: dict[str, dict[str, Any]]) -> str:
    """One digest of the files' names, sizes and samples (not their times): equal for copies of the data."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{files[name]['size']}\0{files[name]['sample']}\n".encode())
    return h.hexdigest()[:32]


def same_data(a: Any, b: Any) -> bool:
    """Do two data records (or older runs' plain folder strings) name the same data?

    Records compare by content digest; a plain string (a run written before records) by its resolved folder.
    """
    if isinstance(a, dict) and isinstance(b, dict) and "digest" in a and "digest" in b:
        return a["digest"] == b["digest"]
    return folder_of(a) == folder_of(b)


def folder_of(record: Any) -> str:
    """The resolved folder of a data record or of an older run's folder string."""
    if isinstance(record, dict):
        return str(record.get("folder"))
    return str(Path(str(record)).resolve())


def describe_data(record: Any) -> str:
    """'FOLDER (N files, digest D)' for reports and messages."""
    if isinstance(record, dict) and "digest" in record:
        return f"{record['folder']} ({len(record['files'])} files, content {record['digest'][:12]})"
    return f"{folder_of(record)} (recorded as a path only)"
