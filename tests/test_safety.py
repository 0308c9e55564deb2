"""No data loss: folders nas-recon did not make, inputs, concurrent runs, resumes and metric caches."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import torch
from conftest import SIZE, write_volume

from nas_recon.cli.main import main
from nas_recon.data.demo import build_demo
from nas_recon.errors import ConfigError, DataError
from nas_recon.io import atomic_write_text
from nas_recon.lock import LOCK_NAME, run_lock
from nas_recon.report.build import evaluate_run, read_run
from nas_recon.train.recipe import Recipe
from nas_recon.train.retrain import RetrainConfig, run_retrain


def retrain(data_root: Path, out: Path, **kw) -> dict:
    recipe = Recipe(epochs=1, batch_size=2, crop=16, val_max_slices=1)
    return run_retrain(RetrainConfig(str(data_root), str(out), recipe, model="dccnn-1", device="cpu", size=SIZE, **kw))


def test_demo_never_removes_a_folder_it_did_not_make(tmp_path, capsys):
    user = tmp_path / "demo" / "data"
    user.mkdir(parents=True)
    (user / "thesis.tex").write_text("years of work\n")
    assert main(["demo", "--out", str(tmp_path / "demo"), "--budget", "tiny"]) == 2
    assert "not a demo folder written by nas-recon" in capsys.readouterr().err
    assert (user / "thesis.tex").read_text() == "years of work\n"


def test_demo_data_force_replaces_only_its_own_folder(tmp_path, nifti_file):
    out = tmp_path / "d"
    build_demo(out, str(nifti_file), 32, slices=20)
    build_demo(out, str(nifti_file), 32, slices=20, seed=1, force=True)  # its own folder: replaced
    assert json.loads((out / "manifest.json").read_text())["seed"] == 1
    (out / "train" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="holds train/notes.txt, which nas-recon did not write"):
        build_demo(out, str(nifti_file), 32, slices=20, force=True)
    assert (out / "train" / "notes.txt").read_text() == "mine"
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "manifest.json").write_text('{"format": "something-else", "files": {}}')
    with pytest.raises(DataError, match="not a demo folder"):
        build_demo(forged, str(nifti_file), 32, slices=20, force=True)
    assert (forged / "manifest.json").is_file()


def test_reconstruct_refuses_to_overwrite_inputs_and_continues_past_bad_files(data_root, tmp_path, capsys):
    retrain(data_root, tmp_path / "run")
    ck = str(tmp_path / "run" / "best.pt")
    inp = tmp_path / "inp"
    inp.mkdir()
    write_volume(inp / "a.h5", slices=2)
    (inp / "b.h5").write_bytes(b"not hdf5")
    write_volume(inp / "c.h5", slices=2)
    before = {p.name: p.read_bytes() for p in inp.iterdir()}
    for out in (inp, tmp_path / "inp" / ".." / "inp"):
        assert main(["reconstruct", "--checkpoint", ck, "--input", str(inp), "--out", str(out),
                     "--size", str(SIZE)]) == 2
        assert "overwrite the input" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in inp.iterdir()} == before
    link = tmp_path / "link"
    link.symlink_to(inp)
    assert main(["reconstruct", "--checkpoint", ck, "--input", str(inp / "a.h5"), "--out", str(link),
                 "--size", str(SIZE)]) == 2
    assert {p.name: p.read_bytes() for p in inp.iterdir()} == before
    capsys.readouterr()
    # one bad file among good ones: the others are written, every failure reported, exit 2 at the end
    assert main(["reconstruct", "--checkpoint", ck, "--input", str(inp), "--out", str(tmp_path / "rec"),
                 "--size", str(SIZE)]) == 2
    err = capsys.readouterr().err
    assert "b.h5" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "rec").glob("*.h5")) == ["a.h5", "c.h5"]
    with h5py.File(tmp_path / "rec" / "c.h5") as f:
        assert f["reconstruction"].shape == (2, SIZE, SIZE)


HOLDER = """
import sys, time
from nas_recon.lock import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_run_folder_lock_between_processes_and_after_a_crash(data_root, tmp_path, capsys):
    out = tmp_path / "run"
    fake = tmp_path / "fake-run"  # a run list report accepts, so that the lock is what refuses it
    fake.mkdir()
    (fake / "run.json").write_text(json.dumps({"kind": "retrain", "model": {"name": "unet"},
                                                      "data": {"folder": str(data_root)}}))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for argv in (["retrain", "--model", "dccnn-1", "--data", str(data_root), "--out", str(out)],
                     ["search", "--data", str(data_root), "--out", str(out), "--crop", "16"],
                     ["report", "--runs", str(fake), "--out", str(out)],
                     ["demo", "--out", str(out), "--budget", "tiny"]):
            assert main([*argv, "--size", str(SIZE)] if argv[0] != "demo" else argv) == 2
            assert "in use by another running nas-recon" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # the refused runs wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the kernel drops the lock with the process
        holder.wait()
    with run_lock(out):  # not mistaken for a live run
        pass
    retrain(data_root, out)
    assert (out / "best.pt").is_file()


def test_two_retrains_into_one_folder(data_root, tmp_path):
    """Two real CLI processes race for one --out: one trains, the other is refused and writes nothing."""
    out = tmp_path / "run"
    recipe = tmp_path / "long.toml"
    recipe.write_text("epochs = 1000000\nbatch_size = 2\ncrop = 16\nval_max_slices = 1\n")  # still running at the end
    base = [sys.executable, "-m", "nas_recon.cli.main", "retrain", "--data", str(data_root), "--out", str(out),
            "--recipe", str(recipe), "--size", str(SIZE), "--device", "cpu"]
    # a child of a non-interactive shell's background job inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: give the child the default disposition, as a terminal would
    first = subprocess.Popen([*base, "--model", "dccnn-1"], stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while not (out / "train_log.csv").exists():  # the first is training (inside its lock)
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.2)
        second = subprocess.run([*base, "--model", "rdn-1"], capture_output=True, text=True)
        assert second.returncode == 2 and "in use" in second.stderr and "Traceback" not in second.stderr
        assert json.loads((out / "run.json").read_text())["model"]["name"] == "dccnn-1"
        assert first.poll() is None  # the first is still training when it gets Ctrl-C
    finally:
        first.send_signal(signal.SIGINT)
        try:
            first.wait(60)
        except subprocess.TimeoutExpired:
            first.kill()
            first.wait()
    assert first.returncode == 130  # Ctrl-C: resumable state kept


def test_sigterm_stops_a_run_like_ctrl_c(data_root, tmp_path):
    """A scheduler's SIGTERM ends a retrain cleanly: exit 143, one line, lock released, checkpoint readable."""
    out = tmp_path / "run"
    recipe = tmp_path / "long.toml"
    recipe.write_text("epochs = 1000000\nbatch_size = 2\ncrop = 16\nval_max_slices = 1\n")
    child = subprocess.Popen([sys.executable, "-m", "nas_recon.cli.main", "retrain", "--data", str(data_root),
                              "--out", str(out), "--recipe", str(recipe), "--size", str(SIZE), "--device", "cpu",
                              "--model", "dccnn-1"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (out / "train_log.csv").exists():  # an epoch is done and checkpointed
            assert child.poll() is None and time.time() < deadline
            time.sleep(0.2)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 143
    assert "terminated (SIGTERM)" in err and "--resume" in err and "Traceback" not in err
    with run_lock(out):  # released
        pass
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert state["epoch"] >= 1


def test_the_cli_gives_back_the_callers_sigterm_handler(tmp_path, capsys):
    """main() used in-process (a notebook, a test) leaves SIGTERM as it found it."""
    def mine(signum, frame):
        return None

    before = signal.signal(signal.SIGTERM, mine)
    try:
        assert main(["search", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")]) == 2
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)


def test_resume_refuses_changed_settings(data_root, tmp_path):
    retrain(data_root, tmp_path / "r")
    run_json = (tmp_path / "r" / "run.json").read_bytes()
    shutil.copytree(data_root, tmp_path / "copy")
    (tmp_path / "copy" / "train" / "train0.h5").unlink()  # other data (a copy of the same data is the same data)
    for kw, message in (({"seed": 1}, "setting 'seed' was"),
                        ({"data": str(tmp_path / "copy")}, "the data is not what this run trained on")):
        recipe = Recipe(epochs=1, batch_size=2, crop=16, val_max_slices=1)
        cfg = RetrainConfig(**{"data": str(data_root), "out": str(tmp_path / "r"), "recipe": recipe,
                               "model": "dccnn-1", "device": "cpu", "size": SIZE, **kw})
        with pytest.raises(ConfigError, match=message):
            run_retrain(cfg, resume=True)
    changes = (({"lr": 5e-3}, "recipe.lr"), ({"loss": "mse"}, "recipe.loss"), ({"epochs": 3}, "recipe.epochs"))
    for change, key in changes:
        recipe = Recipe(**{"epochs": 1, "batch_size": 2, "crop": 16, "val_max_slices": 1, **change})
        with pytest.raises(ConfigError, match=f"setting '{key}' was"):
            run_retrain(RetrainConfig(str(data_root), str(tmp_path / "r"), recipe, model="dccnn-1", device="cpu",
                                      size=SIZE), resume=True)
    assert (tmp_path / "r" / "run.json").read_bytes() == run_json


def test_a_failed_first_step_does_not_block_the_rerun(data_root, tmp_path, monkeypatch):
    import nas_recon.train.retrain as rt

    def broken(spec, supervision):
        def loss(o, b):
            raise ConfigError("loss: broken on purpose")
        return loss

    monkeypatch.setattr(rt, "objective", broken)
    with pytest.raises(ConfigError, match="broken on purpose"):
        retrain(data_root, tmp_path / "r")
    monkeypatch.undo()
    assert retrain(data_root, tmp_path / "r")["best_psnr"] > 0  # no 'already there' refusal


def test_metric_cache_is_keyed_on_everything_that_made_it(data_root, tmp_path):
    retrain(data_root, tmp_path / "r")
    run = read_run(tmp_path / "r")
    test = data_root / "test"
    one = evaluate_run(run, test, SIZE, None, 1, "cpu", 0)
    assert len(one["slices"]) == 2  # 1 slice x 2 accelerations
    two = evaluate_run(run, test, SIZE, None, None, "cpu", 0)
    assert len(two["slices"]) == 4  # a changed slice limit is not served from the cache
    cache = tmp_path / "r" / "metrics-test.json"
    stamp = cache.stat().st_mtime_ns
    assert evaluate_run(run, test, SIZE, None, None, "cpu", 0) == two and cache.stat().st_mtime_ns == stamp
    retrain(data_root, tmp_path / "r2", seed=5)  # another checkpoint in the same folder
    os.replace(tmp_path / "r2" / "best.pt", tmp_path / "r" / "best.pt")
    three = evaluate_run(run, test, SIZE, None, None, "cpu", 0)
    assert three["cache_key"]["checkpoint_sha256"] != two["cache_key"]["checkpoint_sha256"]
    cache.write_text("{broken")
    assert evaluate_run(run, test, SIZE, None, None, "cpu", 0)["cache_key"] == three["cache_key"]


def test_atomic_outputs_get_the_normal_file_mode(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode)


def test_top_level_verbose_shows_the_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "nas_recon.cli.main", "--verbose", "data", "check",
                        str(tmp_path / "missing")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_nonfinite_metrics_are_written_as_valid_json(tmp_path):
    from nas_recon.evaluate.scoring import write_metrics

    write_metrics({"psnr": float("inf"), "rows": [float("nan"), 1.0]}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {"psnr": None, "rows": [None, 1.0]}


def test_lock_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="not a folder"), run_lock(tmp_path / "f"):
        pass
