"""The benches' measured evidence (reports/evidence.json), read and validated like any input file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas_recon.errors import ConfigError
from nas_recon.io import read_strict_json
from nas_recon.paths import shipped_dir

EVIDENCE = "evidence.json"


def evidence_path() -> Path:
    """The shipped evidence file (source checkout first, then the installed share dir)."""
    return shipped_dir("reports") / EVIDENCE


def read_evidence(path: Path | None = None) -> dict[str, Any]:
    """The evidence file's contents ({} when absent: the report then says 'not measured'), checked for shape."""
    path = evidence_path() if path is None else Path(path)
    if not path.exists():
        return {}

    def damaged(why: str) -> ConfigError:
        return ConfigError(f"{path}: {why}; the report cannot quote it (restore it from the repository)")

    try:
        rec = read_strict_json(path)
    except ValueError as e:
        raise damaged(str(e)) from None
    if not isinstance(rec, dict) or rec.get("format") != "nas-recon-evidence" or rec.get("version") != 1:
        raise damaged("expected a JSON object with format 'nas-recon-evidence', version 1")

    def steps(v: Any, key: str, none_ok: bool) -> None:
        if v is None and none_ok:
            return
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise damaged(f"{key} is {v!r}, expected a positive whole number of steps"
                          + (" or null" if none_ok else ""))

    for name, entry in _section(rec, "cell_search", damaged).items():
        steps(entry.get("pays_at_steps"), f"cell_search.{name}.pays_at_steps", True)
        steps(entry.get("measured_up_to_steps"), f"cell_search.{name}.measured_up_to_steps", False)
    for name, entry in _section(rec, "selection", damaged).items():
        steps(entry.get("pays_at_steps"), f"selection.{name}.pays_at_steps", True)
        for key in ("budget", "measured"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise damaged(f"selection.{name}.{key} is missing or not text")
    if not isinstance(rec.get("supernet_fidelity", ""), str):
        raise damaged("supernet_fidelity is not text")
    return rec


def _section(rec: dict[str, Any], key: str, damaged) -> dict[str, dict[str, Any]]:
    """A mapping of names to objects, or the error naming the key."""
    sec = rec.get(key, {})
    if not isinstance(sec, dict) or not all(isinstance(v, dict) for v in sec.values()):
        raise damaged(f"{key} is not an object of objects")
    return sec
