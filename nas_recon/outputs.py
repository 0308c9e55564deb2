"""One output policy for every command: what a write may replace, decided before any work starts.

A command replaces only a regular file that nas-recon wrote as the same kind of output, known by the format
marker inside it: a JSON `"format"` field (metrics, genotype samples), an HDF5 attribute (reconstructions), an
extra file in a TorchScript archive or a metadata entry of an ONNX model (exports). Everything else is refused
with one line naming the file: an input of the command, a checkpoint, a run record, raw k-space, a folder, a
symlink, a device, or a file of another kind. Multi-file outputs check every target first and write nothing on
a refusal.
"""

from __future__ import annotations

import json
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path

from nas_recon.errors import ConfigError
from nas_recon.io import check_writable

MARKER = "nas_recon_format"  # HDF5 attribute / ONNX metadata key / TorchScript extra file stem
KINDS = {
    "metrics": "nas-recon-metrics",
    "genotype": "nas-recon-genotype",
    "reconstruction": "nas-recon-reconstruction",
    "torchscript": "nas-recon-export",
    "onnx": "nas-recon-export",
}
TORCHSCRIPT_EXTRA = f"{MARKER}.json"  # the extra file torch.jit.save stores as <archive>/extra/<name>
JSON_LIMIT = 64 << 20  # a JSON output larger than this is not read to look for its marker


def marker_of(path: Path) -> str | None:
    """The nas-recon format marker inside a regular file, or None (unreadable, foreign, or unmarked)."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head.startswith(b"\x89HDF"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                value = f.attrs.get(MARKER)
        except (OSError, ValueError):
            return None
        return value.decode() if isinstance(value, bytes) else value if isinstance(value, str) else None
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    if name.endswith(f"/extra/{TORCHSCRIPT_EXTRA}"):
                        return json.loads(z.read(name)).get("format")
        except (OSError, zipfile.BadZipFile, ValueError, AttributeError):
            return None
        return None
    if head.lstrip()[:1] == b"{":
        try:
            if path.stat().st_size > JSON_LIMIT:
                return None
            d = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        return d.get("format") if isinstance(d, dict) and isinstance(d.get("format"), str) else None
    return onnx_marker(path)


def onnx_marker(path: Path) -> str | None:
    """The marker in an ONNX model's metadata (None when onnx is missing or the file is no ONNX model)."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - any parse failure means: not an ONNX model nas-recon wrote
        return None
    return next((p.value for p in model.metadata_props if p.key == MARKER), None)


def check_output_file(path: Path, kind: str, option: str = "--out", inputs: Iterable[Path] = (),
                      probe: bool = True) -> None:
    """Refuse `path` as an output of `kind` unless it is new or a regular file nas-recon wrote as that kind;
    `probe`: also check that its folder can be written (check_output_files probes each folder once)."""
    resolved = path.resolve()
    for i in inputs:
        i = Path(i)
        if resolved == i.resolve() or (path.exists() and i.exists() and path.samefile(i)):
            raise ConfigError(f"{option}: {path} would overwrite the input file {i} (its data would be lost); "
                              "choose another output")
    if not (path.exists() or path.is_symlink()):
        parent = path.parent
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{option}: {parent} is not a folder")
        if probe:
            check_writable(parent, option)
        return
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        raise ConfigError(f"{option}: {path} is a symbolic link; refusing to replace it (choose another output)")
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{option}: {path} is a folder, expected a file to write")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{option}: {path} is not a regular file; refusing to replace it")
    if marker_of(path) != KINDS[kind]:
        raise ConfigError(f"{option}: {path} exists and is not a {kind} output nas-recon wrote (refusing to replace "
                          "it: it may be an input, a checkpoint, a run record or data); choose another output")
    if probe:
        check_writable(path.parent, option)


def check_output_files(paths: Iterable[Path], kind: str, option: str = "--out",
                       inputs: Iterable[Path] = ()) -> None:
    """check_output_file for every target of a multi-file output, before any of them is written."""
    inputs, paths = list(inputs), list(paths)
    for p in paths:
        check_output_file(p, kind, option, inputs, probe=False)
    for folder in dict.fromkeys(p.parent for p in paths):  # one probe per folder, not one per file
        check_writable(folder, option)


def check_output_dir(path: Path, option: str = "--out") -> None:
    """The folder of a multi-file output: absent, or an existing folder (not a file, not a symlink to one)."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option}: {path} exists and is not a folder")
    check_writable(path, option)


FOLDER_KIND = ".nas-recon-kind"  # written first into a multi-file output folder: what kind of folder it is


def folder_kind(path: Path) -> str | None:
    """The kind a nas-recon output folder was marked with (None: unmarked)."""
    try:
        return (path / FOLDER_KIND).read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def claim_folder(path: Path, kind: str, option: str = "--out", ignore: Iterable[str] = (),
                 known: bool = False) -> None:
    """Refuse a folder that holds anything unless nas-recon marked it as a `kind` folder; then mark it.

    `ignore`: names that may be there in a new folder (the run lock); `known`: an older marker (a report.json of
    a report written before folders were marked) says it is one. Call before any other write into PATH.
    """
    from nas_recon.io import atomic_write_text

    check_output_dir(path, option)
    if path.is_dir():
        have = folder_kind(path)
        extra = [p.name for p in path.iterdir() if p.name not in {FOLDER_KIND, *ignore}]
        if have is not None and have != kind:
            raise ConfigError(f"{option}: {path} is a {have} folder, not a {kind} folder; choose another output")
        if have is None and extra and not known:
            raise ConfigError(f"{option}: {path} holds files nas-recon did not write as a {kind} folder (e.g. "
                              f"{sorted(extra)[0]}); refusing to write into it, choose another output")
        if have == kind:
            return
    atomic_write_text(path / FOLDER_KIND, kind + "\n")


RUN_KINDS = ("search", "retrain", "report", "sample", "ablate", "demo")
STATE_FILES = {"demo.json": "demo", "ablate.json": "ablate", "report.json": "report"}  # folders without a marker


def recorded_kind(path: Path) -> str | None:
    """What kind of nas-recon folder PATH is: its marker, its run record's "kind", or the state file it holds."""
    if not path.is_dir():
        return None
    have = folder_kind(path)
    if have is not None:
        return have
    run_json = path / "run.json"
    if run_json.is_file():
        try:
            kind = json.loads(run_json.read_text()).get("kind")
        except (OSError, ValueError, UnicodeDecodeError, AttributeError):
            kind = None  # an unreadable record: the command that reads it says so, naming the file
        return kind if kind in RUN_KINDS else None
    for name, kind in STATE_FILES.items():
        if (path / name).is_file():
            return kind
    if any(marker_of(p) == KINDS["genotype"] for p in path.glob("random_*.json")):
        return "sample"
    return None


def check_run_folder(path: Path, kind: str, option: str = "--out") -> None:
    """Refuse a folder nas-recon made as another kind of output (a search into a retrain folder, ...)."""
    check_output_dir(path, option)
    have = recorded_kind(path)
    if have is not None and have != kind:
        raise ConfigError(f"{option}: {path} is a {have} folder, not a {kind} folder (refusing to write into it); "
                          "choose another output")


def read_run_record(path: Path, kind: str) -> dict:
    """A run folder's run.json as a mapping of the expected kind, or one line naming the file and what is wrong."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: unreadable run record ({str(e).splitlines()[0][:100]}); use another "
                          "--out") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{path}: unreadable run record (not a JSON object); use another --out")
    if record.get("kind", kind) != kind:
        raise ConfigError(f"{path}: the record of a {record.get('kind')} run, not a {kind} run; use another --out")
    return record
