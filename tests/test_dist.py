"""Data-parallel retraining: shares of a batch, 2 gloo ranks computing what one process computes, rank 0 alone
writing, and errors that stop every rank."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SIZE

from nas_recon.data.sampler import EpochSampler
from nas_recon.engine.checkpoint import read_checkpoint
from nas_recon.engine.dist import ShardedBatches, World, shard


@pytest.mark.parametrize("n, ranks", [(4, 2), (3, 2), (1, 2), (5, 4), (8, 3), (2, 1)])
def test_shares_cover_the_batch_and_weight_to_its_mean(n, ranks):
    batch = list(range(10, 10 + n))
    losses = np.random.default_rng(n).random(100)
    shares = [shard(batch, World(r, ranks)) for r in range(ranks)]
    assert sorted(i for items, f in shares if f > 0 for i in items) == batch  # every item once, no other
    # DDP averages the ranks' gradients: mean_r(factor_r * mean of the share) must be the batch mean
    ddp = sum(f * losses[items].mean() for items, f in shares) / ranks
    assert ddp == pytest.approx(losses[batch].mean(), rel=1e-12)


def test_one_rank_batches_are_the_plain_loaders():
    order = EpochSampler(11, 3)
    order.set_epoch(2)
    plain = [b.tolist() for b in torch.utils.data.DataLoader(list(range(11)), 4, sampler=order)]
    sharded = ShardedBatches(EpochSampler(11, 3), 4, World())
    sharded.set_epoch(2)
    assert list(sharded) == plain and sharded.factors == [1.0, 1.0, 1.0] and len(sharded) == 3


def run_cli(args, **env):
    e = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return subprocess.run([sys.executable, "-m", "nas_recon", *args], capture_output=True, text=True,
                          env={**e, **env}, timeout=600)


def run_here(args):
    """The same command in this process (the one-process reference)."""
    from nas_recon.cli.main import main

    assert "WORLD_SIZE" not in os.environ
    return main(list(args))


def retrain_args(data_root, out, *extra):
    return ["retrain", "--model", "dccnn-1", "--data", str(data_root), "--out", str(out), "--recipe", "quick",
            "--epochs", "2", "--batch-size", "4", "--crop", "16", "--size", str(SIZE), *extra]


def log(path):
    with open(path / "train_log.csv") as f:
        return list(csv.DictReader(f))


def test_two_ranks_train_what_one_process_trains(data_root, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_here(retrain_args(data_root, one)) == 0
    r2 = run_cli(retrain_args(data_root, two, "--devices", "2"))
    assert r2.returncode == 0, r2.stderr
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())  # rank 1 wrote nothing
    a, b = log(one), log(two)
    assert len(a) == len(b) == 3
    for ra, rb in zip(a, b, strict=True):
        if ra["train_loss"]:
            assert float(rb["train_loss"]) == pytest.approx(float(ra["train_loss"]), rel=1e-4)
        assert float(rb["val_psnr"]) == pytest.approx(float(ra["val_psnr"]), abs=1e-3)
        assert rb["step"] == ra["step"]  # the same number of (global) steps
    # Adam moves a weight by up to lr per step whatever its gradient's size, so where a gradient is ~0 the
    # reduction order's rounding can flip a step: weights agree within steps x lr (4 x 1e-3), most far closer
    wa, wb = read_checkpoint(one / "last.pt")["state_dict"], read_checkpoint(two / "last.pt")["state_dict"]
    steps = int(a[-1]["step"])
    diffs = torch.cat([(wb[k] - wa[k]).abs().flatten() for k in wa])
    assert float(diffs.max()) <= steps * 1e-3 and float(diffs.median()) < 1e-5
    assert r2.stdout.count("best val PSNR") == 1  # one rank talks


def test_errors_stop_every_rank_with_one_line(data_root, tmp_path):
    out = tmp_path / "run"
    r = run_cli(retrain_args(data_root, out, "--devices", "2", "--batch-size", "3"))
    assert r.returncode == 2 and "multiple of 2" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (out / "last.pt").exists()
    assert run_cli(retrain_args(data_root, out, "--epochs", "1")).returncode == 0
    before = (out / "last.pt").read_bytes()
    r = run_cli(retrain_args(data_root, out, "--devices", "2"))  # rank 0 refuses the existing run: all stop
    assert r.returncode == 2 and "already there" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (out / "last.pt").read_bytes() == before


def test_commands_that_are_not_data_parallel_refuse_torchrun(data_root, tmp_path):
    out = tmp_path / "m.json"
    r = run_cli(["evaluate", "--model", "zero-filled", "--data", str(data_root / "test"), "--out", str(out),
                 "--size", str(SIZE)], WORLD_SIZE="2", RANK="0")
    assert r.returncode == 2 and "evaluate: runs as one process" in r.stderr and not out.exists()


def search_args(data_root, out, *extra):
    return ["search", "--data", str(data_root), "--out", str(out), "--space", "paper_b", "--size", str(SIZE),
            "--crop", "16", "--epochs", "2", "--batch-size", "4", *extra]


def rows(path, name):
    with open(path / name) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("strategy", ["darts2", "gdas", "pcdarts", "random"])  # darts: the resume test
def test_two_rank_search_is_the_one_process_search(data_root, tmp_path, strategy):
    """Same global batch: the same genotype, the same alphas (averaged gradients keep the ranks bit-identical;
    a divergence would stop the run), losses equal to float rounding, and rank 1 writes nothing."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_here(search_args(data_root, one, "--strategy", strategy, "--epochs", "1")) == 0
    r2 = run_cli(search_args(data_root, two, "--strategy", strategy, "--epochs", "1", "--devices", "2"))
    assert r2.returncode == 0, r2.stderr
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    g1, g2 = (json.loads((d / "genotype.json").read_text()) for d in (one, two))
    assert g2["cell"] == g1["cell"]
    if strategy != "random":
        a1, a2 = rows(one, "alphas.csv"), rows(two, "alphas.csv")
        assert len(a1) == len(a2) and all(abs(float(x["weight"]) - float(y["weight"])) < 1e-6
                                          for x, y in zip(a1, a2, strict=True))
    for x, y in zip(rows(one, "search_log.csv"), rows(two, "search_log.csv"), strict=True):
        assert float(y["w_loss"]) == pytest.approx(float(x["w_loss"]), rel=1e-5)


def test_two_rank_search_resumes_and_refuses_like_one(data_root, tmp_path):
    out = tmp_path / "run"
    r = run_cli(search_args(data_root, out, "--devices", "2", "--batch-size", "3"))
    assert r.returncode == 2 and "multiple of 2" in r.stderr and not out.exists()
    assert run_cli(search_args(data_root, out, "--devices", "2", "--epochs", "1")).returncode == 0
    before = (out / "run.json").read_bytes()
    r = run_cli(search_args(data_root, out, "--devices", "2"))  # rank 0 refuses: every rank stops
    assert r.returncode == 2 and "already there" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (out / "run.json").read_bytes() == before
    r = run_cli(search_args(data_root, out, "--devices", "2", "--resume"))
    assert r.returncode == 0, r.stderr
    whole = tmp_path / "whole"
    assert run_here(search_args(data_root, whole)) == 0
    assert json.loads((out / "genotype.json").read_text())["cell"] == json.loads(
        (whole / "genotype.json").read_text())["cell"]
    assert [x["w_loss"][:7] for x in rows(out, "search_log.csv")] == [x["w_loss"][:7]
                                                                       for x in rows(whole, "search_log.csv")]


def test_sigterm_to_the_launcher_stops_every_rank_resumably(data_root, tmp_path):
    """A scheduler's SIGTERM reaches only `--devices`' launcher: it passes the stop on, the ranks exit as on
    Ctrl-C (143 from rank 0), and `--resume` continues from the last checkpoint (the epochs run on unbroken)."""
    import signal
    import time

    out = tmp_path / "run"
    e = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}

    def run_until(extra, rows):
        p = subprocess.Popen([sys.executable, "-m", "nas_recon",
                              *retrain_args(data_root, out, "--epochs", "400", "--devices", "2", *extra)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=e)
        deadline = time.time() + 300
        while time.time() < deadline and p.poll() is None and not (
                (out / "train_log.csv").exists() and len(log(out)) >= rows):
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 143, err
        assert "terminated (SIGTERM)" in err and "--resume" in err
        return len(log(out))

    first = run_until([], 2)
    second = run_until(["--resume"], first + 1)
    assert second > first
    assert [int(r["epoch"]) for r in log(out)] == list(range(second))


def test_a_rank_killed_from_outside_is_named_in_one_line(data_root, tmp_path):
    """kill -9 of one rank of `retrain --devices 2`: the launcher stops the other, names the dead rank in one line
    (not the other rank's broken-connection traceback) and says how to go on; --resume continues."""
    import signal
    import time

    import psutil

    out = tmp_path / "run"
    e = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    p = subprocess.Popen([sys.executable, "-m", "nas_recon",
                          *retrain_args(data_root, out, "--epochs", "12", "--devices", "2")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=e)
    deadline = time.time() + 300
    while time.time() < deadline and not ((out / "train_log.csv").exists() and len(log(out)) >= 2):
        time.sleep(0.05)
    ranks = {int(c.environ().get("RANK", -1)): c for c in psutil.Process(p.pid).children()}
    ranks[1].send_signal(signal.SIGKILL)
    _, err = p.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, err
    assert "rank 1 of 2 was killed (SIGKILL)" in lines[0] and "--resume" in lines[0]
    done = len(log(out))
    r = run_cli(retrain_args(data_root, out, "--epochs", "12", "--resume"))
    assert r.returncode == 0, r.stderr
    assert [int(x["epoch"]) for x in log(out)] == list(range(13)) and done < 13
