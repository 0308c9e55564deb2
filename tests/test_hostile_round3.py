"""Hostile input, third round (issue 30), by mechanism: flags that cannot act, divergence that stays finite, sets
that would mix, the selection's inputs (issue 29).

Every case runs the CLI in-process against the shared world of test_hostile and asserts exit status 2, exactly one
stderr line naming the culprit, no traceback, and every file that existed before byte-identical after.
"""

from __future__ import annotations

import json

import pytest
from conftest import SIZE
from test_hostile import check_clean, fill, run, snapshot, world  # noqa: F401 - `world` is the shared fixture

RETRAIN = ["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--recipe", "{w}/recipe.toml", "--device", "cpu"]
SEARCH = ["search", "--data", "{w}/data", "--epochs", "1", "--crop", "16", "--batch-size", "2", "--device", "cpu"]
COSTED = ["--cost", "latency", "--cost-weight", "0.1"]
HALVING = [*SEARCH, "--space", "macro_a", "--select", "halving", "--recipe", "{w}/recipe.toml", "--pool", "3",
           "--rungs", "1"]


@pytest.fixture(scope="module")
def w3(world):  # noqa: F811
    """The world, plus r3/: a sample set of 2 drawn with seed 0."""
    from nas_recon.cli.main import main

    r3 = world / "r3"
    if not r3.exists():
        r3.mkdir()
        assert main(["sample", "--out", str(r3 / "set"), "--n", "2", "--seed", "0"]) == 0
        # a network that says it was trained on 4 coils (its checkpoint's and its run record's data), beside the
        # world's single-coil run
        import shutil

        from nas_recon.engine.checkpoint import read_checkpoint, save_checkpoint

        shutil.copytree(world / "run", r3 / "mc-run")
        for name in ("best.pt", "last.pt"):
            ck = read_checkpoint(r3 / "mc-run" / name)
            ck["data"] = {**ck["data"], "coils": 4}
            save_checkpoint(r3 / "mc-run" / name, {k: v for k, v in ck.items()
                                                   if k not in ("format", "version", "package_version", "sha256")})
        meta = json.loads((r3 / "mc-run" / "run.json").read_text())
        (r3 / "mc-run" / "run.json").write_text(json.dumps({**meta, "coils": 4}))
        # references that cannot score, masks data check must refuse as reconstruct does, undersampled training data
        import h5py
        import numpy as np
        from conftest import write_volume

        (r3 / "zero-ref" / "test").mkdir(parents=True)
        write_volume(r3 / "zero-ref" / "test" / "z.h5", slices=2)
        with h5py.File(r3 / "zero-ref" / "test" / "z.h5", "r+") as f:
            f["reconstruction_esc"][...] = 0
        cols = np.zeros(36, dtype=np.float32)
        cols[::3] = 1
        (r3 / "narrow").mkdir()
        write_volume(r3 / "narrow" / "n.h5", slices=1, mask=cols[:SIZE])
        for split, n in (("train", 3), ("val", 1)):
            (r3 / "under" / split).mkdir(parents=True)
            for i in range(n):
                write_volume(r3 / "under" / split / f"{split}{i}.h5", slices=2, mask=cols, seed=40 + i)
        (r3 / "half" / "train").mkdir(parents=True)
        shutil.copytree(world / "data" / "val", r3 / "half" / "val")
        for i in range(2):
            shutil.copy(world / "data" / "train" / f"train{i}.h5", r3 / "half" / "train")
        shutil.copy(r3 / "under" / "train" / "train0.h5", r3 / "half" / "train" / "under.h5")
        # evidence files: a search with a cost table and a ranking-fidelity record, and damaged copies of both
        from nas_recon.search.fidelity import FIDELITY, write_fidelity

        assert main(fill([*SEARCH, "--out", str(r3 / "search"), *COSTED], world)) == 0
        write_fidelity(r3 / "search", {"tau": -0.1, "ci95": [-0.6, 0.5], "cells": 9, "budget": "standard",
                                       "verdict": "cannot rank"})
        good = json.loads((r3 / "search" / FIDELITY).read_text())
        for label, text in (("nan", json.dumps(good).replace('"tau": -0.1', '"tau": NaN')),
                            ("truncated", json.dumps(good)[:40]), ("tau-2", json.dumps({**good, "tau": 2.0})),
                            ("other", json.dumps({**good, "search_digest": "0" * 64}))):
            shutil.copytree(r3 / "search", r3 / f"fid-{label}")
            (r3 / f"fid-{label}" / FIDELITY).write_text(text)
        from nas_recon.data.demo import build_demo

        build_demo(r3 / "mcdata", "mni152", 64, 0, 20, coils=2)  # multi-coil at the tiny budget's size
        build_demo(r3 / "demo-data", "mni152", 64, 0, 20)
        (r3 / "demo-data" / "maps").mkdir()
        (r3 / "demo-data" / "maps" / "slice-0.npy").write_bytes(b"a maps cache a run put here (--maps-dir)")
        costs = json.loads((r3 / "search" / "op_costs.json").read_text())
        for label, value in (("negative", -5.0), ("nan", "NaN")):
            shutil.copytree(r3 / "search", r3 / f"costs-{label}")
            bad = {**costs, "costs": {**costs["costs"], "sep_conv_3x3": value}}
            (r3 / f"costs-{label}" / "op_costs.json").write_text(json.dumps(bad).replace('"NaN"', "NaN"))
    return world


CASES = [
    # flags recorded and ignored: refused, saying why
    ([*RETRAIN, "--out", "{w}/r3/a", "--cg-iterations", "5"], "--cg-iterations"),
    ([*RETRAIN, "--out", "{w}/r3/a", "--soft-dc", "--cg-iterations", "5"], "single-coil"),
    ([*RETRAIN, "--out", "{w}/r3/a", "--maps-dir", "{w}/r3/maps"], "--maps-dir"),
    ([*SEARCH, "--out", "{w}/r3/s", "--maps-dir", "{w}/r3/maps"], "--maps-dir"),
    (["retrain", "--genotype", "{w}/g.json", "--data", "{w}/data", "--recipe", "{w}/recipe.toml", "--out",
      "{w}/r3/a", "--channels", "8"], "--channels"),
    (["retrain", "--model", "varnet-small", "--data", "{w}/data", "--recipe", "{w}/recipe.toml", "--out",
      "{w}/r3/a", "--channels", "8"], "--channels"),
    (["cost", "--genotype", "{w}/g.json", "--channels", "8"], "--channels"),
    (["cost", "--model", "dccnn-3", "--channels", "8", "--flops-target", "2"], "--flops-target"),
    # a set counted twice, a set that would mix
    (["evaluate", "--model", "zero-filled", "--data", "{w}/data/test", "--out", "{w}/r3/m.json", "--accelerations",
      "4", "4"], "--accelerations"),
    (["sample", "--out", "{w}/r3/set", "--n", "2", "--seed", "5"], "--seed 5"),
    (["sample", "--out", "{w}/r3/set", "--n", "1", "--seed", "0"], "--n 2"),
    # data of the other kind, refused before any output or evaluation
    (["reconstruct", "--checkpoint", "{w}/r3/mc-run/best.pt", "--input", "{w}/data/test", "--out", "{w}/r3/rec"],
     "multi-coil (4 coils)"),
    (["reconstruct", "--checkpoint", "{w}/r3/mc-run/best.pt", "--input", "{w}/data/test/test0.h5", "--out",
      "{w}/r3/rec"], "test0.h5"),
    (["evaluate", "--checkpoint", "{w}/r3/mc-run/best.pt", "--data", "{w}/data/test", "--out", "{w}/r3/m.json"],
     "multi-coil (4 coils)"),
    (["report", "--runs", "{w}/run", "{w}/r3/mc-run", "--out", "{w}/r3/rep", "--no-tv"], "mc-run"),
    (["report", "--runs", "{w}/run", "{w}/r3/mc-run", "--out", "{w}/r3/rep", "--no-tv", "--mixed-data"], "mc-run"),
    (["report", "--runs", "{w}/r3/mc-run", "--out", "{w}/r3/rep", "--no-tv"], "single-coil"),
    # a reference that cannot score, a mask narrower than its k-space: data check agrees with evaluate/reconstruct
    (["data", "check", "{w}/r3/zero-ref/test", "--size", str(SIZE)], "all zero"),
    (["evaluate", "--model", "zero-filled", "--data", "{w}/r3/zero-ref/test", "--out", "{w}/r3/m.json"], "all zero"),
    (["data", "check", "{w}/r3/narrow", "--size", str(SIZE)], "'mask' has 32 columns, expected 36"),
    # undersampled files (fastMRI's test layout) give no supervised target
    ([*RETRAIN[:3], "--data", "{w}/r3/under", *RETRAIN[5:], "--out", "{w}/r3/a"], "train0.h5"),
    ([*RETRAIN[:3], "--data", "{w}/r3/half", *RETRAIN[5:], "--out", "{w}/r3/a"], "under.h5"),
    (["search", "--data", "{w}/r3/under", *SEARCH[3:], "--out", "{w}/r3/s"], "--supervision ssdu"),
    (["evaluate", "--model", "zero-filled", "--data", "{w}/r3/under/val", "--out", "{w}/r3/m.json"], "own 'mask'"),
    # evidence files are inputs too
    *[(["report", "--runs", f"{{w}}/r3/fid-{label}", "{w}/run", "--out", "{w}/r3/rep", "--no-tv"], culprit)
      for label, culprit in (("nan", "not strict JSON"), ("truncated", "unreadable"), ("tau-2", "'tau' is 2.0"),
                             ("other", "measured on another search"))],
    *[([*SEARCH, "--out", f"{{w}}/r3/costs-{label}", *COSTED, "--resume"], "op_costs.json")
      for label in ("negative", "nan")],
    # data-parallel ranks that cannot start: refused before any rank does
    ([*SEARCH, "--out", "{w}/r3/dp", "--devices", "64"], "--devices 64"),
    ([*RETRAIN, "--out", "{w}/r3/dp", "--devices", "64"], "--devices 64"),
    ([*SEARCH, "--out", "{w}/r3/dp", "--devices", "2", "--batch-size", "3"], "--batch-size 3"),
    (["retrain", "--model", "unet", "--data", "{w}/data", "--recipe", "quick", "--out", "{w}/r3/dp", "--devices",
      "2"], "--batch-size 1"),
    # messages that name the real culprit
    (["ablate", "--data", "{w}/r3/mcdata", "--out", "{w}/r3/abl", "--budget", "tiny"], "ESPIRiT needs"),
    (["data", "demo", "--out", "{w}/r3/demo-data", "--size", "64", "--slices", "20", "--force"],
     "a --maps-dir cache"),
    # a finite divergence
    ([*SEARCH, "--out", "{w}/r3/div", "--lr", "1e30"], "diverged"),
    # the selection's inputs (issue 29)
    ([*HALVING, "--out", "{w}/r3/h"], "--flops-target"),
    ([*HALVING, "--out", "{w}/r3/h", "--flops-target", "5000"], "--flops-target"),
    ([*HALVING, "--out", "{w}/r3/h", "--flops-target", "like:nothing-3"], "nothing-3"),
    ([*HALVING, "--out", "{w}/r3/h", "--flops-target", "2", "--flops-band", "0"], "--flops-band"),
    ([*HALVING, "--out", "{w}/r3/h", "--flops-target", "2", "--workers", "512"], "--workers"),
    ([*HALVING, "--out", "{w}/r3/h", "--flops-target", "2", "--storage", "mysql://u:secret@127.0.0.1:1/x"],
     "--storage"),
    ([*HALVING, "--out", "{w}/r3/h", "--flops-target", "2", "--storage", "ftp://x"], "--storage"),
    ([*HALVING, "--out", "{w}/r3/h", "--flops-target", "2", "--rungs", "4"], "--rungs"),
    ([*HALVING, "--out", "{w}/r3/h", "--flops-target", "2", "--pool", "1"], "--pool"),
    ([*SEARCH, "--out", "{w}/r3/h", "--flops-target", "2", "--pool", "9"], "--pool"),
    ([*SEARCH, "--out", "{w}/r3/h", "--flops-target", "2", "--storage", "sqlite:///x.db"], "--storage"),
    ([*HALVING, "--out", "{w}/r3/h", "--flops-target", "2", "--strategy", "pcdarts"], "pcdarts"),
    ([*HALVING, "--out", "{w}/r3/h", "--flops-target", "2", "--data", "{w}/data/train"], "val/"),
    ([*SEARCH, "--out", "{w}/r3/h", "--space", "paper_a", "--flops-target", "50"], "--flops-target"),
    (["sample", "--out", "{w}/r3/n", "--space", "paper_a", "--flops-target", "50"], "--flops-target"),
    (["sample", "--out", "{w}/r3/n", "--flops-target", "2", "--flops-like", "{w}/g.json"], "--flops-like"),
    (["select", "--run", "{w}/r3/nowhere"], "nowhere"),
    (["select", "--run", "{w}/run"], "--run"),
    (["demo", "--out", "{w}/r3/d", "--budget", "tiny", "--flops-target", "abc"], "--flops-target"),
    (["demo", "--out", "{w}/r3/d", "--budget", "tiny", "--space", "macro_a", "--select", "alpha"], "--space"),
]


@pytest.mark.parametrize(("argv", "culprit"), CASES, ids=[" ".join(a[:2]) + f"~{c}" for a, c in CASES])
def test_round3_case(w3, capsys, argv, culprit):
    before = snapshot(w3)
    code, err = run(fill(argv, w3), capsys)
    check_clean(code, err, culprit.replace("{w}", str(w3)), before, snapshot(w3))


def test_a_finite_divergence_in_retraining_stops_it(w3, capsys, tmp_path):
    """A loss that explodes but stays finite is a divergence as a NaN is: one line, exit 2, no best.pt of it."""
    recipe = tmp_path / "r.toml"
    recipe.write_text("epochs = 2\nbatch_size = 2\ncrop = 16\nval_max_slices = 1\nlr = 1e30\nlr_after = 1e30\n")
    code, err = run([*fill(RETRAIN, w3)[:-4], "--recipe", str(recipe), "--device", "cpu", "--out",
                     str(tmp_path / "r"), "--size", str(SIZE)], capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "grew to" in err or "became" in err
    assert json.loads((tmp_path / "r" / "run.json").read_text())["kind"] == "retrain"
