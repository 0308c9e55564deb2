"""Data known by content (nas_recon.data.identity): resume and report compare data by fingerprint, not by string."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import pytest
from conftest import SIZE

from nas_recon.data.identity import data_record, file_fingerprint, same_data
from nas_recon.errors import ConfigError
from nas_recon.report.build import make_report
from nas_recon.train.recipe import Recipe
from nas_recon.train.retrain import RetrainConfig, run_retrain

RECIPE = Recipe(epochs=1, batch_size=2, crop=16, val_max_slices=1)


def retrain(data, out, epochs=1, **kw):
    r = Recipe(**{**RECIPE.to_dict(), "epochs": epochs})
    return run_retrain(RetrainConfig(str(data), str(out), r, model="dccnn-1", device="cpu", size=SIZE, **kw),
                       resume=(out / "run.json").exists())


def test_fingerprint_tolerates_a_copy_and_sees_an_edit_in_place(data_root, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(data_root, copy)  # copytree keeps times; touch the copy to be a plain `cp`
    for p in copy.rglob("*.h5"):
        os.utime(p, ns=(1, 1))
    a, b = data_record(data_root), data_record(copy)
    assert a["folder"] != b["folder"] and same_data(a, b)
    f = copy / "train" / "train0.h5"
    before = file_fingerprint(f)
    with h5py.File(f, "r+") as h:
        k = h["kspace"][()]
        k[0, 3, 3] += 1
        h["kspace"][...] = k
    after = file_fingerprint(f)
    assert after["mtime_ns"] != before["mtime_ns"]  # the cache key sees the edit even if the sample misses it
    assert same_data(str(data_root), str(data_root / "." / "train" / ".."))  # older runs: resolved folders


def test_resume_takes_the_same_data_by_another_name_and_refuses_other_data(data_root, tmp_path, monkeypatch):
    out = tmp_path / "run"
    retrain(data_root, out)
    link = tmp_path / "link"
    link.symlink_to(data_root)
    monkeypatch.chdir(data_root.parent)
    retrain("./" + data_root.name, out)  # a finished run resumed: the settings and data are checked
    retrain(link, out)  # a symlink: same data
    assert json.loads((out / "run.json").read_text())["data"]["digest"] == data_record(data_root,
                                                                                      ("train", "val"))["digest"]
    other = tmp_path / "other"
    shutil.copytree(data_root, other)
    with h5py.File(other / "train" / "train0.h5", "r+") as h:
        del h["reconstruction_esc"]
        h["reconstruction_esc"] = [[[0.0]]]
    with pytest.raises(ConfigError, match="the data is not what this run trained on"):
        retrain(other, out)


def test_search_resume_compares_data_by_content(data_root, tmp_path, monkeypatch):
    from test_search import tiny_config

    from nas_recon.search.run import run_search

    run_search(tiny_config(data_root, tmp_path / "s", epochs=1))
    monkeypatch.chdir(tmp_path)
    link = tmp_path / "alias"
    link.symlink_to(data_root)
    run_search(tiny_config("alias", tmp_path / "s", epochs=2), resume=True)  # same data by another name
    other = tmp_path / "other"
    shutil.copytree(data_root, other)
    (other / "train" / "train0.h5").write_bytes((other / "train" / "train1.h5").read_bytes())
    with pytest.raises(ConfigError, match="the data is not what this search trained on"):
        run_search(tiny_config(other, tmp_path / "s", epochs=3), resume=True)


def test_report_refuses_runs_trained_on_different_data_and_marks_them_on_request(data_root, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(data_root, other)
    (other / "train" / "train0.h5").unlink()
    retrain(data_root, tmp_path / "a")
    retrain(other, tmp_path / "b")
    runs = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(ConfigError, match="different data cannot be ranked side by side"):
        make_report(runs, tmp_path / "rep", data_root / "test", SIZE, classical=("zero-filled",))
    assert not (tmp_path / "rep").exists()
    rep = make_report(runs, tmp_path / "rep", data_root / "test", SIZE, classical=("zero-filled",),
                      latency_repeats=1, mixed_data=True)
    kinds = {r["model"]: r["kind"] for r in rep["rows"]}
    assert kinds["dccnn-1 (a)"] == "baseline" and kinds["dccnn-1 (b)"] == "baseline, other data"
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "training data** of dccnn-1 (b)" in md and str(other.resolve()) in md


def test_report_cache_is_recomputed_after_the_test_data_changed_in_place(data_root, tmp_path):
    retrain(data_root, tmp_path / "a")
    args = ([tmp_path / "a"], tmp_path / "rep", data_root / "test", SIZE)
    first = make_report(*args, classical=("zero-filled",), latency_repeats=1)["rows"]
    with h5py.File(data_root / "test" / "test0.h5", "r+") as h:
        k = h["kspace"][()]
        k[:, :, : k.shape[2] // 2] = 0  # a different test set under the same name
        h["kspace"][...] = k
    second = make_report(*args, classical=("zero-filled",), latency_repeats=1)["rows"]
    psnr = {(r["model"], r["acceleration"]): r["psnr"]["mean"] for r in first}
    assert all(abs(psnr[(r["model"], r["acceleration"])] - r["psnr"]["mean"]) > 1e-3 for r in second)
