"""Report row labels: every retrained run keeps its own row."""

import json
from pathlib import Path

import pytest

from nas_recon.errors import ConfigError
from nas_recon.report.build import label_runs, make_report


def run(path: Path, name: str, extra: dict | None = None) -> dict:
    """A retrain run record as read_run returns it."""
    meta = {"kind": "retrain", "model": {"name": name}, "genotype_extra": extra or {}}
    return {"path": path, "kind": "retrain", "meta": meta}


def test_the_same_baseline_trained_twice_gets_two_rows(tmp_path):
    runs = [run(tmp_path / "a" / "dccnn-3", "dccnn-3"), run(tmp_path / "b" / "dccnn-3", "dccnn-3"),
            run(tmp_path / "x", "dccnn-3"), run(tmp_path / "a" / "unet", "unet"),
            run(tmp_path / "a" / "searched-seed0", "searched"), run(tmp_path / "b" / "searched-seed0", "searched"),
            run(tmp_path / "a" / "cell", "searched", {"sampled": 1})]
    label_runs(runs)
    assert [r["label"] for r in runs] == [
        "dccnn-3 (a/dccnn-3)", "dccnn-3 (b/dccnn-3)", "dccnn-3 (x)", "unet",
        "searched-seed0 (a/searched-seed0)", "searched-seed0 (b/searched-seed0)", "random:cell"]


def test_a_run_given_twice_is_refused(tmp_path):
    runs = [run(tmp_path / "u", "unet"), run(tmp_path / "v" / ".." / "u", "unet")]
    with pytest.raises(ConfigError, match="given twice"):
        label_runs(runs)


def test_a_refused_run_list_writes_nothing(tmp_path):
    d = tmp_path / "unet"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"kind": "retrain", "model": {"name": "unet"}}))
    out = tmp_path / "report"
    with pytest.raises(ConfigError, match="given twice"):
        make_report([d, tmp_path / "." / "unet"], out)
    with pytest.raises(ConfigError, match="no retrain run"):
        make_report([], out)
    assert not out.exists()
