"""Hostile input across every command: exit 2, one line naming the culprit, no traceback, nothing lost.

Each case runs the CLI in-process against a shared, pre-built world (data, a finished retrain run, a
search-like genotype, a recipe) and checks that every file that existed before is byte-identical after.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import EXAMPLE, SIZE, write_volume

from nas_recon.cli.main import main
from nas_recon.engine.checkpoint import read_checkpoint
from nas_recon.train.recipe import Recipe
from nas_recon.train.retrain import RetrainConfig, run_retrain


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """data/, run/ (dccnn-1, one epoch), broken files of every kind, a recipe and genotypes."""
    w = tmp_path_factory.mktemp("world")
    for s, (split, n) in enumerate((("train", 3), ("val", 1), ("test", 1))):
        (w / "data" / split).mkdir(parents=True)
        for i in range(n):
            write_volume(w / "data" / split / f"{split}{i}.h5", slices=2, seed=100 * s + i)
    recipe = Recipe(epochs=1, batch_size=2, crop=16, val_max_slices=1)
    run_retrain(RetrainConfig(str(w / "data"), str(w / "run"), recipe, model="dccnn-1", device="cpu", size=SIZE))
    (w / "recipe.toml").write_text("epochs = 1\nbatch_size = 2\ncrop = 16\nval_max_slices = 1\n")
    (w / "g.json").write_text(json.dumps(dict(EXAMPLE, channels=4, cascades=1)))
    bad = w / "bad"
    bad.mkdir()
    (bad / "afile").write_text("I am a file\n")
    (bad / "notjson.json").write_text("{not json")
    (bad / "list.json").write_text("[1, 2]")
    (bad / "empty.pt").write_bytes(b"")
    (bad / "text.pt").write_bytes(b"not a checkpoint at all")
    rest = EXAMPLE["cell"][1:]

    def node(inputs: list[int], op: str) -> dict:
        return {"inputs": inputs, "ops": [op, "sep_conv_3x3"]}

    genos = {
        "mixed_space": dict(EXAMPLE, cell=[node([0, 1], "conv_9x1_1x9")] + rest),
        "million_cascades": dict(EXAMPLE, cascades=1_000_000),
        "huge_channels": dict(EXAMPLE, channels=100_000),
        "zero_cells": dict(EXAMPLE, cells=0),
        "bool_nodes": dict(EXAMPLE, nodes=True),
        "none_op": dict(EXAMPLE, cell=[node([0, 1], "none")] + rest),
        "bad_input": dict(EXAMPLE, cell=[node([0, 5], "sep_conv_3x3")] + rest),
        "wrong_format": dict(EXAMPLE, format="darts"),
        "future_version": dict(EXAMPLE, version=99),
        "missing_cell": {k: v for k, v in EXAMPLE.items() if k != "cell"},
        "string_bias": dict(EXAMPLE, bias="yes"),
    }
    for name, g in genos.items():
        (bad / f"{name}.json").write_text(json.dumps(g))
    ck = read_checkpoint(w / "run" / "best.pt")
    variants = {
        "model_unknown_key": {**ck, "model": {**ck["model"], "colour": "red"}},
        "model_wrong_type": {**ck, "model": {**ck["model"], "channels": "thirty-two"}},
        "model_not_dict": {**ck, "model": ["dccnn-1"]},
        "model_unknown_name": {**ck, "model": {**ck["model"], "name": "vgg-16"}},
        "state_not_dict": {**ck, "state_dict": [1, 2]},
        "no_format": {k: v for k, v in ck.items() if k != "format"},
    }
    for name, payload in variants.items():
        torch.save(payload, bad / f"{name}.pt")
    flipped = {**ck, "state_dict": {k: v.clone() for k, v in ck["state_dict"].items()}}
    first = next(iter(flipped["state_dict"]))
    t = flipped["state_dict"][first]
    t[(0,) * t.ndim] += 1.0  # a damaged weight behind an unchanged stored hash
    torch.save(flipped, bad / "flipped.pt")
    raw = (w / "run" / "best.pt").read_bytes()
    at = int(len(raw) * 0.6)
    (bad / "bitflip.pt").write_bytes(raw[:at] + bytes([raw[at] ^ 0x10]) + raw[at + 1 :])
    (bad / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    recipes = {"unknown_key": "epochs = 1\nwarmup = 3\n", "neg_epochs": "epochs = -1\n", "nan_lr": "lr = nan\n",
               "bad_loss": "loss = 'l7'\n", "bad_toml": "epochs = = 1\n", "str_crop": "crop = 'big'\n",
               "zero_lr": "lr = 0.0\n", "inf_lr": "lr = inf\n"}
    for name, text in recipes.items():
        (bad / f"recipe_{name}.toml").write_text(text)
    spaces = {"unknown_op": 'ops = ["sep_conv_3x3", "conv_99"]\n', "only_none": 'ops = ["none"]\n',
              "huge_nodes": 'ops = ["sep_conv_3x3"]\nnodes = 100000\n',
              "bad_key": 'ops = ["sep_conv_3x3"]\ncolour = 1\n'}
    for name, text in spaces.items():
        (bad / f"space_{name}.toml").write_text(text)
    zero = bad / "zerodata" / "test"
    zero.mkdir(parents=True)
    write_volume(zero / "z.h5", slices=2)
    with h5py.File(zero / "z.h5", "r+") as f:
        k = f["kspace"][()]
        k[1] = 0
        f["kspace"][...] = k
    nan = bad / "nandata"
    nan.mkdir()
    write_volume(nan / "n.h5", slices=2)
    with h5py.File(nan / "n.h5", "r+") as f:
        k = f["kspace"][()]
        k[0, 3, 3] = np.nan
        f["kspace"][...] = k
    return w


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under root."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run(argv: list[str], capsys) -> tuple[int, str]:
    """main(argv) in-process: (exit status, stderr)."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


# --- numeric flags: every command's numbers, each with the bad values its type rejects ---------------------------

POS_INT = ["0", "-1", "abc", "1.5"]
NONNEG_INT = ["-1", "abc", "2.5"]
SEED = ["-1", "4294967296", "seven"]
SIZE_BAD = ["8", "0", "-320", "abc"]
POS_FLOAT = ["nan", "inf", "-1", "0", "abc"]
NONNEG_FLOAT = ["nan", "-inf", "-0.5", "abc"]
FRACTION = ["0", "1", "1.5", "nan"]
ACCEL = ["0", "-4", "nan", "100"]

BASE = {
    "search": ["search", "--data", "{w}/data", "--out", "{w}/new"],
    "retrain": ["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--out", "{w}/new"],
    "evaluate": ["evaluate", "--model", "zero-filled", "--data", "{w}/data/test", "--out", "{w}/new.json"],
    "reconstruct": ["reconstruct", "--checkpoint", "{w}/run/best.pt", "--input", "{w}/data/test", "--out", "{w}/new"],
    "export": ["export", "--checkpoint", "{w}/run/best.pt", "--format", "onnx", "--out", "{w}/new.onnx"],
    "cost": ["cost", "--model", "dccnn-1"],
    "sample": ["sample", "--out", "{w}/new"],
    "report": ["report", "--runs", "{w}/run", "--out", "{w}/new"],
    "data demo": ["data", "demo", "--out", "{w}/new"],
    "data check": ["data", "check", "{w}/data/test"],
    "demo": ["demo", "--out", "{w}/new"],
    "ablate": ["ablate", "--out", "{w}/new", "--data", "{w}/data"],
}
FLAGS = {
    "search": {"--epochs": POS_INT, "--patience": POS_INT, "--crop": NONNEG_INT, "--size": SIZE_BAD,
               "--batch-size": POS_INT, "--max-slices": NONNEG_INT, "--seed": SEED, "--lr": POS_FLOAT,
               "--arch-lr": POS_FLOAT, "--arch-weight-decay": NONNEG_FLOAT, "--grad-clip": NONNEG_FLOAT,
               "--split": FRACTION, "--candidates": POS_INT, "--repeats": POS_INT, "--decide-margin": NONNEG_FLOAT,
               "--max-skips": NONNEG_INT, "--tau-max": POS_FLOAT, "--tau-min": POS_FLOAT,
               "--cost-weight": NONNEG_FLOAT},
    "retrain": {"--epochs": POS_INT, "--crop": NONNEG_INT, "--batch-size": POS_INT, "--lr": POS_FLOAT,
                "--max-slices": NONNEG_INT, "--size": SIZE_BAD, "--seed": SEED},
    "evaluate": {"--size": SIZE_BAD, "--crop": NONNEG_INT, "--accelerations": ACCEL, "--max-slices": NONNEG_INT,
                 "--seed": SEED},
    "reconstruct": {"--acceleration": ACCEL, "--size": SIZE_BAD, "--seed": SEED},
    "export": {"--size": SIZE_BAD},
    "cost": {"--size": SIZE_BAD, "--repeats": POS_INT},
    "sample": {"--n": POS_INT, "--seed": SEED, "--tolerance": POS_FLOAT},
    "report": {"--size": SIZE_BAD, "--crop": NONNEG_INT, "--max-slices": NONNEG_INT, "--seed": SEED},
    "data demo": {"--size": SIZE_BAD, "--seed": SEED, "--slices": POS_INT},
    "data check": {"--size": SIZE_BAD},
    "demo": {"--seed": SEED},
    "ablate": {"--seed": SEED, "--nodes": POS_INT},
}
NUMERIC = [(cmd, flag, value) for cmd, flags in FLAGS.items() for flag, values in flags.items() for value in values]


# --- files: broken state, checkpoints, genotypes, recipes, spaces, data, --out in the wrong place ------------------

EVAL_TAIL = ["--data", "{w}/data/test", "--out", "{w}/o.json"]
TS_TAIL = ["--format", "torchscript", "--out", "{w}/x.ts"]
FILES = [
    # checkpoints
    (["evaluate", "--checkpoint", "{w}/bad/flipped.pt", *EVAL_TAIL], "damaged"),
    (["evaluate", "--checkpoint", "{w}/bad/bitflip.pt", *EVAL_TAIL], "bitflip.pt"),
    (["evaluate", "--checkpoint", "{w}/bad/truncated.pt", *EVAL_TAIL], "truncated.pt"),
    (["evaluate", "--checkpoint", "{w}/bad/empty.pt", *EVAL_TAIL], "empty.pt"),
    (["evaluate", "--checkpoint", "{w}/bad/text.pt", *EVAL_TAIL], "text.pt"),
    (["evaluate", "--checkpoint", "{w}/bad/missing.pt", *EVAL_TAIL], "missing.pt"),
    (["export", "--checkpoint", "{w}/bad/model_unknown_key.pt", *TS_TAIL], "colour"),
    (["export", "--checkpoint", "{w}/bad/model_wrong_type.pt", *TS_TAIL], "channels"),
    (["export", "--checkpoint", "{w}/bad/model_not_dict.pt", *TS_TAIL], "model"),
    (["export", "--checkpoint", "{w}/bad/model_unknown_name.pt", *TS_TAIL],
     "model_unknown_name.pt"),
    (["export", "--checkpoint", "{w}/bad/state_not_dict.pt", *TS_TAIL],
     "state_dict"),
    (["export", "--checkpoint", "{w}/bad/no_format.pt", *TS_TAIL], "format"),
    (["reconstruct", "--checkpoint", "{w}/bad/flipped.pt", "--input", "{w}/data/test", "--out", "{w}/r"], "damaged"),
    # genotypes
    *[(["cost", "--genotype", f"{{w}}/bad/{name}.json"], key) for name, key in [
        ("mixed_space", "conv_9x1_1x9"), ("million_cascades", "cascades"), ("huge_channels", "channels"),
        ("zero_cells", "cells"), ("bool_nodes", "nodes"), ("none_op", "none"), ("bad_input", "input index 5"),
        ("wrong_format", "format"), ("future_version", "version"), ("missing_cell", "cell"),
        ("string_bias", "field 'bias'"), ("notjson", "not valid JSON"), ("list", "JSON object"),
        ("missing", "not found")]],
    *[(["retrain", "--genotype", f"{{w}}/bad/{name}.json", "--data", "{w}/data", "--out", "{w}/n"], key)
      for name, key in [("mixed_space", "conv_9x1_1x9"), ("million_cascades", "cascades")]],
    (["sample", "--out", "{w}/s", "--flops-like", "{w}/bad/huge_channels.json"], "channels"),
    # recipes
    *[(["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--out", "{w}/n", "--recipe",
        f"{{w}}/bad/recipe_{name}.toml"], key) for name, key in [
        ("unknown_key", "warmup"), ("neg_epochs", "epochs"), ("nan_lr", "lr"), ("bad_loss", "l7"),
        ("bad_toml", "TOML"), ("str_crop", "crop"), ("zero_lr", "lr"), ("inf_lr", "lr")]],
    (["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--out", "{w}/n", "--recipe", "nonexistent"], "--recipe"),
    (["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--out", "{w}/n", "--loss", "l1+ssim:abc"], "loss"),
    # spaces
    *[(["search", "--data", "{w}/data", "--out", "{w}/n", "--space", f"{{w}}/bad/space_{name}.toml"], key)
      for name, key in [("unknown_op", "conv_99"), ("only_none", "none"), ("huge_nodes", "nodes"),
                        ("bad_key", "colour")]],
    (["search", "--data", "{w}/data", "--out", "{w}/n", "--space", "paper_z"], "--space"),
    (["search", "--data", "{w}/data", "--out", "{w}/n", "--cost-weight", "0.5"], "--cost-weight"),
    (["search", "--data", "{w}/data", "--out", "{w}/n", "--strategy", "random", "--cost", "flops", "--cost-weight",
      "0.5"], "--cost-weight"),
    (["ablate", "--data", "{w}/data", "--out", "{w}/n", "--nodes", "17"], "--nodes"),
    (["ablate", "--data", "{w}/data", "--out", "{w}/n", "--spaces", "paper_z"], "--space"),
    (["sample", "--out", "{w}/s", "--space", "{w}/bad/space_unknown_op.toml"], "conv_99"),
    # data
    (["data", "check", "{w}/bad/zerodata/test", "--size", "32"], "all zero"),
    (["data", "check", "{w}/bad/nandata", "--size", "32"], "NaN"),
    (["evaluate", "--model", "zero-filled", "--data", "{w}/bad/zerodata/test", "--out", "{w}/o.json", "--size", "32"],
     "slice 1"),
    (["evaluate", "--model", "zero-filled", "--data", "{w}/bad/afile", "--out", "{w}/o.json"], "afile"),
    (["data", "check", "{w}/data/test", "--size", "64"], "smaller than"),
    (["retrain", "--model", "dccnn-1", "--data", "{w}/data/test", "--out", "{w}/n"], "train/"),
    (["search", "--data", "{w}/bad", "--out", "{w}/n"], "bad"),
    # models
    (["retrain", "--model", "vgg", "--data", "{w}/data", "--out", "{w}/n"], "vgg"),
    (["retrain", "--model", "dccnn", "--data", "{w}/data", "--out", "{w}/n"], "dccnn"),
    (["retrain", "--model", "unet-3", "--data", "{w}/data", "--out", "{w}/n"], "unet"),
    (["retrain", "--model", "tv", "--data", "{w}/data", "--out", "{w}/n"], "tv"),
    (["cost", "--model", "rdn-0"], "rdn-0"),
    # far beyond the machine's memory: refused before anything is built
    (["search", "--data", "{w}/data", "--out", "{w}/n", "--crop", "0", "--batch-size", "100000000"], "needs about"),
    (["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--out", "{w}/n", "--batch-size", "100000000"],
     "needs about"),
    # --out in the wrong place
    (["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--out", "{w}/bad/afile"], "afile"),
    (["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--out", "{w}/bad/afile/sub"], "afile"),
    (["search", "--data", "{w}/data", "--out", "{w}/bad/afile", "--crop", "16"], "afile"),
    (["report", "--runs", "{w}/run", "--out", "{w}/bad/afile"], "afile"),
    (["demo", "--out", "{w}/bad/afile"], "afile"),
    (["sample", "--out", "{w}/bad/afile"], "afile"),
    (["reconstruct", "--checkpoint", "{w}/run/best.pt", "--input", "{w}/data/test", "--out", "{w}/bad/afile"], "afile"),
    (["evaluate", "--model", "zero-filled", "--data", "{w}/data/test", "--out", "{w}/bad"], "bad"),
    (["evaluate", "--model", "zero-filled", "--data", "{w}/data/test", "--out", "{w}/bad/afile/m.json"], "afile"),
    # runs and resumes
    (["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--out", "{w}/run"], "already there"),
    (["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--out", "{w}/run", "--resume", "--lr", "0.01",
      "--recipe", "{w}/recipe.toml", "--size", "32"], "recipe"),
    (["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--out", "{w}/run", "--resume", "--seed", "3",
      "--recipe", "{w}/recipe.toml", "--size", "32"], "seed"),
    (["retrain", "--model", "dccnn-1", "--data", "{w}/data", "--out", "{w}/run", "--resume", "--loss", "mse",
      "--recipe", "{w}/recipe.toml", "--size", "32"], "recipe"),
    (["retrain", "--model", "rdn-1", "--data", "{w}/data", "--out", "{w}/run", "--resume",
      "--recipe", "{w}/recipe.toml", "--size", "32"], "model"),
    (["report", "--runs", "{w}/bad", "--out", "{w}/rep"], "run.json"),
    (["report", "--runs", "{w}/data", "--out", "{w}/rep"], "run.json"),
    (["sample", "--out", "{w}/s", "--n", "100000"], "--n"),
    (["reconstruct", "--checkpoint", "{w}/run/best.pt", "--input", "{w}/data/test", "--out", "{w}/data/test"],
     "overwrite the input"),
    (["reconstruct", "--checkpoint", "{w}/run/best.pt", "--input", "{w}/data/test/test0.h5", "--out",
      "{w}/data/test"], "overwrite the input"),
    (["reconstruct", "--checkpoint", "{w}/run/best.pt", "--input", "{w}/data/test", "--out", "{w}/data/../data/test"],
     "overwrite the input"),
]


SIZED = ("search", "retrain", "evaluate", "reconstruct", "report")


def fill(argv: list[str], w: Path) -> list[str]:
    """Put the world's path in; commands that pair images get the fixtures' size unless the case sets one."""
    argv = [a.replace("{w}", str(w)) for a in argv]
    return argv + ["--size", str(SIZE)] if argv[0] in SIZED and "--size" not in argv else argv


def check_clean(code: int, err: str, culprit: str, before: dict[str, str], after: dict[str, str]) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert culprit.lower() in err.lower(), f"{culprit!r} not named in: {err}"
    changed = [k for k in before if after.get(k) != before[k]]
    assert not changed, f"pre-existing files changed or lost: {changed}"


@pytest.mark.parametrize(("cmd", "flag", "value"), NUMERIC, ids=[f"{c}{f}={v}" for c, f, v in NUMERIC])
def test_bad_number(world, capsys, cmd, flag, value):
    before = snapshot(world)
    code, err = run(fill(BASE[cmd], world) + [flag, value], capsys)
    check_clean(code, err, flag, before, snapshot(world))


@pytest.mark.parametrize(("argv", "culprit"), FILES, ids=[" ".join(a[:2]) + f"~{c}" for a, c in FILES])
def test_bad_file_or_state(world, capsys, argv, culprit):
    before = snapshot(world)
    code, err = run(fill(argv, world), capsys)
    check_clean(code, err, culprit.replace("{w}", str(world)), before, snapshot(world))


def test_suite_is_large_enough():
    assert len(NUMERIC) + len(FILES) >= 150


def test_failed_runs_leave_no_half_written_outputs(world, capsys):
    """A refused command writes nothing: no new run folder content besides an empty lock, no temp files."""
    out = world / "fresh"
    code, _ = run(["retrain", "--model", "dccnn-1", "--data", str(world / "data"), "--out", str(out),
                   "--recipe", str(world / "bad" / "recipe_unknown_key.toml")], capsys)
    assert code == 2 and not out.exists()
    assert not list(world.rglob(".*.tmp*")) and not [p for p in world.rglob(".*") if p.name.startswith(".o.json")]


def test_copy_of_run_with_corrupt_state(world, capsys, tmp_path):
    """Corrupt run.json / last.pt in a run folder: --resume names the file and changes nothing."""
    for name, data in (("run.json", b"{oops"), ("run.json", b"[]"), ("last.pt", b"\x00" * 10)):
        run_dir = tmp_path / f"r_{name}_{len(data)}"
        shutil.copytree(world / "run", run_dir)
        (run_dir / name).write_bytes(data)
        before = snapshot(run_dir)
        code, err = run(["retrain", "--model", "dccnn-1", "--data", str(world / "data"), "--out", str(run_dir),
                         "--recipe", str(world / "recipe.toml"), "--size", str(SIZE), "--resume"], capsys)
        check_clean(code, err, name, before, snapshot(run_dir))
