"""Search that pays (issue 29): macro spaces, genotype version 2, FLOPs bands, the in-band derivation, the pool,
the successive-halving plan and its Optuna study (exactly once, resumable, several workers, SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SIZE

from nas_recon.cost import conv_macs
from nas_recon.errors import ConfigError, Diverged
from nas_recon.genotype import Genotype, chain_cell, genotype_from_dict, load_genotype, save_genotype
from nas_recon.models.registry import ModelSpec, build_model, count_params
from nas_recon.models.searched import build_from_genotype
from nas_recon.search.budget import (
    FlopsBand,
    genotype_flops,
    model_flops,
    parse_flops_target,
    width_for,
)
from nas_recon.search.derive import cell_score, derive_genotype, derive_in_band, edges
from nas_recon.search.random_cells import sample_genotype
from nas_recon.select.plan import DIVERGED, Job, make_plan
from nas_recon.select.pool import ORIGINS, build_pool, identity, random_network
from nas_recon.space.spaces import load_space, space_from_dict

DCCNN3 = 17_340_825_600  # conv MACs of dccnn-3 at 320 x 320 (reports/cost-320.md)


def chain(ops=("conv_3x3", "conv_3x3"), **kw) -> Genotype:
    base = dict(cell=chain_cell(list(ops)), space="macro_a", channels=32, cells=3, cascades=3, bias=True,
                backbone="chain")
    base.update(kw)
    return Genotype(**base)


# --- the macro space ------------------------------------------------------------------------------------------

def test_macro_a_holds_dccnn_and_modl_as_points():
    s = load_space("macro_a")
    assert s.backbone == "chain" and s.is_macro and s.bias
    assert s.values("cascades") == tuple(range(2, 11)) and s.values("channels") == tuple(range(16, 65))
    assert s.values("shared") == (False, True) and s.values("dc") == ("hard", "soft")
    assert (s.cascades, s.cells, s.channels) == (4, 1, 32)  # the supernet's point
    points = s.points()
    assert points["dccnn-3"]["shared"] is False and points["modl-3"]["shared"] is True
    assert points["dccnn-3"]["ops"] == ("conv_3x3", "conv_3x3")
    paper = load_space("paper_a")
    assert not paper.is_macro and paper.values("cascades") == (3,) and paper.backbone == "dag"


@pytest.mark.parametrize("name,shared", [("dccnn-3", False), ("modl-3", True)])
def test_the_handcrafted_points_are_the_registered_networks_exactly(name, shared):
    """Same layers in the same order: same parameters, FLOPs, initial weights (one seed) and outputs."""
    torch.manual_seed(3)
    point = build_from_genotype(chain(shared=shared))
    torch.manual_seed(3)
    ref = build_model(ModelSpec(name))
    assert count_params(point) == count_params(ref) and conv_macs(point, 32) == conv_macs(ref, 32)
    for a, b in zip(point.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    x = torch.randn(2, 2, 24, 24)
    mask = torch.zeros(2, 1, 1, 24)
    mask[..., ::3] = 1
    assert torch.equal(point(x, x * mask, mask), ref(x, x * mask, mask))


@pytest.mark.parametrize("bad,message", [
    ({"cascades": []}, "key 'cascades' is an empty list"),
    ({"cascades": [2, 0]}, r"key 'cascades' must be an integer in \[1, 64\], got 0"),
    ({"channels": {"min": 64, "max": 16}}, "key 'channels': min 64 is above max 16"),
    ({"channels": {"min": 16}}, "key 'channels': a range is a table"),
    ({"dc": ["hard", "weak"]}, "key 'dc' must be one of hard, soft, got 'weak'"),
    ({"shared": [False, "yes"]}, "key 'shared' must be true or false"),
    ({"cells": [1, 1]}, "key 'cells' lists a choice twice"),
    ({"supernet": {"cascades": 11}}, "key 'supernet.cascades' is 11, not one of the choices"),
    ({"supernet": {"nodes": 2}}, "key 'supernet.nodes' is unknown"),
    ({"backbone": "dag"}, "holds a list; macro choices need backbone"),
    ({"backbone": "tree"}, "key 'backbone' must be one of dag, chain"),
    ({"handcrafted": {"x": {"ops": ["conv_3x3"], "cascades": 3, "cells": 3, "shared": False, "dc": "hard"}}},
     r"key 'handcrafted.x.ops' must list 2 ops"),
    ({"handcrafted": {"x": {"ops": ["conv_3x3", "conv_3x3"], "cascades": 12, "cells": 3, "shared": False,
                            "dc": "hard"}}}, "key 'handcrafted.x.cascades' is 12, not one of"),
])
def test_a_bad_macro_key_is_named(bad, message):
    import tomllib

    from nas_recon.paths import shipped_dir

    data = tomllib.loads((shipped_dir("search_spaces") / "macro_a.toml").read_text())
    data.update(bad)
    with pytest.raises(ConfigError, match=message):
        space_from_dict(data, "space.toml")


# --- genotype version 2 ---------------------------------------------------------------------------------------

def test_genotype_v2_round_trip_and_v1_stays_v1(tmp_path):
    g = chain(ops=("conv_3x3", "sep_conv_5x5"), cascades=9, cells=1, channels=31, shared=True, dc="soft")
    save_genotype(g, tmp_path / "g.json")
    d = json.loads((tmp_path / "g.json").read_text())
    assert d["version"] == 2 and d["backbone"] == "chain" and d["shared"] is True and d["dc"] == "soft"
    assert d["cell"] == [{"inputs": [0], "ops": ["conv_3x3"]}, {"inputs": [1], "ops": ["sep_conv_5x5"]}]
    assert load_genotype(tmp_path / "g.json") == g
    assert g.summary() == "9 cascades x 1 cell, 31 channels, shared, soft DC: conv_3x3 > sep_conv_5x5"
    from conftest import EXAMPLE

    v1 = genotype_from_dict(EXAMPLE)
    assert v1.backbone == "dag" and v1.version == 1 and v1.to_dict()["version"] == 1 and "backbone" not in v1.to_dict()
    net = build_from_genotype(g)
    assert len(net.bodies) == 9 and len({id(b) for b in net.bodies}) == 1  # shared: one body
    assert all(f.learnable and not f.hard for f in net.fusions)  # soft DC: a learnt weight


@pytest.mark.parametrize("change,message", [
    ({"cell": [{"inputs": [0, 1], "ops": ["conv_3x3", "conv_3x3"]}, {"inputs": [1], "ops": ["conv_3x3"]}]},
     "list of 1 integer"),
    ({"cell": [{"inputs": [1], "ops": ["conv_3x3"]}, {"inputs": [1], "ops": ["conv_3x3"]}]}, "reads state 0"),
    ({"shared": "no"}, "field 'shared' must be true or false"),
    ({"dc": "firm"}, "field 'dc' must be one of hard, soft"),
    ({"space": "paper_a"}, "field 'backbone' is 'chain', space 'paper_a'"),
])
def test_a_bad_v2_genotype_is_named(change, message):
    d = {**chain().to_dict(), **change}
    with pytest.raises(ConfigError, match=message):
        genotype_from_dict(d)


# --- FLOPs budgets --------------------------------------------------------------------------------------------

def test_genotype_flops_are_thop_on_the_whole_network():
    rng = np.random.default_rng(0)
    nets = [sample_genotype(load_space(n), rng) for n in ("paper_a", "paper_b", "mixed_a")]
    nets += [chain(ops=ops, cascades=c, cells=k, channels=ch, shared=sh) for ops, c, k, ch, sh in (
        (("conv_3x3", "sep_conv_5x5"), 2, 4, 20, False), (("dil_4_conv_3x3", "skip_connect"), 7, 2, 45, True),
        (("dil_2_dense_3x3", "sep_conv_3x3"), 10, 1, 17, False))]
    for g in nets:
        assert genotype_flops(g, 48) == conv_macs(build_from_genotype(g), 48), g.summary()
    assert genotype_flops(chain()) == DCCNN3


def test_flops_targets_parse_and_refuse():
    b = parse_flops_target("like:dccnn-3")
    assert b.target == DCCNN3 and b.band == 0.05 and b.holds(DCCNN3 * 1.049) and not b.holds(DCCNN3 * 1.051)
    assert parse_flops_target("8.67", 0.1).hi == pytest.approx(8.67e9 * 1.1)
    for text, message in (("abc", "expected GFLOPs"), ("-3", "positive number"), ("like:", "needs a model name"),
                          ("like:tv", "not a network"), ("like:dccnn-x", "unknown model"),
                          ("like:missing.json", "genotype file not found")):
        with pytest.raises(ConfigError, match=message):
            parse_flops_target(text)
    with pytest.raises(ConfigError, match="--flops-band: expected a fraction"):
        parse_flops_target("10", 0.0)


def test_handcrafted_width_for_a_target():
    half = FlopsBand(DCCNN3 / 2, 0.05, "half")
    w = width_for("dccnn-3", half)
    assert half.holds(model_flops("dccnn-3", w)) and w in (22, 23)
    assert width_for("dccnn-3", parse_flops_target("like:dccnn-3")) == 32
    with pytest.raises(ConfigError, match="no width within"):
        width_for("dccnn-3", FlopsBand(1e6, 0.01, "tiny"))


def uniform(space):
    return {e: {o: 1.0 / len(space.ops) for o in space.ops} for e in edges(space.nodes, space.backbone)}


def test_in_band_derivation_is_the_exact_best_cell():
    """Against brute force over every cell of a 2-node paper_a space: the knapsack finds the best-scored cell in the
    band; unconstrained (or when the rule's cell is in the band) it is the paper's rule."""
    space = replace(load_space("paper_a"), nodes=2)
    rng = np.random.default_rng(4)
    w = {e: dict(zip(space.ops, rng.dirichlet(np.ones(len(space.ops))), strict=True))
         for e in edges(space.nodes)}
    free = derive_genotype(w, space)
    assert derive_in_band(w, space, FlopsBand(genotype_flops(free), 0.001, "free")).cell == free.cell
    real = space.real_ops
    band = FlopsBand(genotype_flops(free) * 0.8, 0.05, "lower")
    best = None
    for (_, i1), ops in itertools.product(
            [((0, 1), p) for p in itertools.combinations(range(3), 2)], itertools.product(real, repeat=4)):
        from nas_recon.genotype import Node, genotype_for

        g = genotype_for(space, (Node((0, 1), ops[:2]), Node(i1, ops[2:])))
        if band.holds(genotype_flops(g)) and (best is None or cell_score(w, g.cell) > best[0] + 1e-12):
            best = (cell_score(w, g.cell), g)
    got = derive_in_band(w, space, band)
    assert band.holds(genotype_flops(got)) and cell_score(w, got.cell) == pytest.approx(best[0])
    with pytest.raises(ConfigError, match="no cell of space 'paper_a' lies within"):
        derive_in_band(w, space, FlopsBand(1e12, 0.05, "huge"))


def test_chain_derivation_sets_the_width_to_the_band():
    space = load_space("macro_a")
    w = uniform(space)
    w[(0, 0)]["sep_conv_3x3"] = 0.5
    w[(1, 1)]["conv_3x3"] = 0.5
    band = parse_flops_target("like:dccnn-3")
    g = derive_in_band(w, space, band)
    assert [n.ops[0] for n in g.cell] == ["sep_conv_3x3", "conv_3x3"] and band.holds(genotype_flops(g))
    assert (g.cascades, g.cells) == (space.cascades, space.cells) and g.channels != space.channels


# --- the pool ---------------------------------------------------------------------------------------------------

def test_pool_is_distinct_in_band_deterministic_and_keeps_the_handcrafted_points():
    space = load_space("macro_a")
    band = parse_flops_target("like:dccnn-3")
    w = uniform(space)
    proposal = derive_in_band(w, space, band)
    pool = build_pool(space, band, 12, 0, proposal, w)
    assert len(pool) == 12 and len({identity(c.genotype) for c in pool}) == 12
    assert all(band.holds(genotype_flops(c.genotype)) and c.origin in ORIGINS for c in pool)
    assert pool[0].origin == "darts" and pool[0].genotype.cell == proposal.cell
    hand = [c for c in pool if c.origin == "handcrafted"]
    assert [(c.genotype.cascades, c.genotype.cells, c.genotype.channels, c.genotype.shared) for c in hand] == \
        [(3, 3, 32, False), (3, 3, 32, True)]
    assert {c.origin for c in pool} == set(ORIGINS)
    again = build_pool(space, band, 12, 0, proposal, w)
    assert [identity(c.genotype) for c in again] == [identity(c.genotype) for c in pool]
    other = build_pool(space, band, 12, 1, proposal, w)
    assert [identity(c.genotype) for c in other] != [identity(c.genotype) for c in pool]
    with pytest.raises(ConfigError, match="--pool 3: only 0 distinct networks"):
        build_pool(load_space("paper_a"), FlopsBand(14.5e9, 0.0001, "narrow"), 3, 0)


def test_random_networks_of_a_band():
    space = load_space("macro_a")
    band = FlopsBand(8.67e9, 0.05, "half")
    rng = np.random.default_rng(0)
    gs = [random_network(space, band, rng) for _ in range(20)]
    assert all(band.holds(genotype_flops(g)) for g in gs)
    assert len({g.cascades for g in gs}) > 3 and len({identity(g) for g in gs}) == 20


# --- the plan ---------------------------------------------------------------------------------------------------

def test_plan_rungs_promotions_finalists_and_winner():
    plan = make_plan(9, 24, 3, 3, (0, 1))
    assert plan.epochs == (3, 8, 24) and [plan.survivors(r) for r in range(3)] == [9, 3, 1]
    scores: dict = {}
    assert [j.candidate for j in plan.next_jobs(scores)] == list(range(9))
    for c in range(9):  # candidate 4 diverges; ties between 1 and 2 go to the lower index
        scores[(c, 0, 0)] = DIVERGED if c == 4 else {1: 30.0, 2: 30.0, 7: 31.0}.get(c, 20.0 + c)
    jobs = plan.next_jobs(scores)
    assert [j.candidate for j in jobs] == [7, 1, 2] and {j.epochs for j in jobs} == {8}
    scores.update({(7, 1, 0): 29.0, (1, 1, 0): 32.0, (2, 1, 0): 31.5})
    assert [(j.candidate, j.rung, j.epochs) for j in plan.next_jobs(scores)] == [(1, 2, 24)]
    scores[(1, 2, 0)] = 33.0
    assert plan.next_jobs(scores) == [Job(1, 2, 1, 24)]  # the finalist's other seed, from scratch
    scores[(1, 2, 1)] = 32.0
    assert plan.next_jobs(scores) == [] and plan.winner(scores) == (1, 32.5)
    assert plan.cost_epochs() == 9 * 3 + 3 * 5 + 1 * 16 + 1 * 24
    with pytest.raises(ConfigError, match="--rungs 5: the recipe's 8 epochs cannot make 5 rungs"):
        make_plan(9, 8, 5, 3, (0,))
    # two rungs of 18: the best 3 of the last rung get the other seed (the default plan: 13 standard retrainings)
    two = make_plan(18, 24, 2, 3, (0, 1))
    assert two.epochs == (8, 24) and two.final == 3 and two.cost_epochs() == 18 * 8 + 6 * 16 + 3 * 24
    s2 = {(c, 0, 0): float(c) for c in range(18)}
    s2.update({(c, 1, 0): 40.0 - c for c in range(12, 18)})
    assert [j.candidate for j in two.next_jobs(s2)] == [12, 13, 14] and all(j.seed == 1 for j in two.next_jobs(s2))
    for kw, message in ((dict(pool=1), "--pool"), (dict(eta=1), "--eta")):
        with pytest.raises(ConfigError, match=message):
            make_plan(**{"pool": 9, "final_epochs": 24, "rungs": 3, "eta": 3, "seeds": (0,), **kw})


# --- the study: exactly once, several workers, resumable --------------------------------------------------------

def fake_study(url: str, name: str, plan, run_job, workers: int = 1):
    from nas_recon.select.study import open_storage, open_study, work

    study = open_study(open_storage(url), name, {"plan": plan.to_dict()})
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(work(open_study(open_storage(url), name,
                                                                          {"plan": plan.to_dict()}),
                                                               plan, run_job, poll_s=0.05)))
               for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return study, out


def test_study_runs_every_job_once_with_two_workers(tmp_path):
    from nas_recon.select.study import scores_of

    plan = make_plan(9, 9, 3, 3, (0, 1))
    runs: list = []
    lock = threading.Lock()

    def job(j):
        with lock:
            runs.append(j.key)
        time.sleep(0.02)
        if j.candidate == 5:
            raise Diverged("loss became nan")
        return 10.0 + j.candidate + j.rung

    study, results = fake_study(f"sqlite:///{tmp_path / 's.db'}", "t", plan, job, workers=2)
    assert len(runs) == len(set(runs)) == len(plan.next_jobs({})) + 3 + 1 + 1  # 9, then 3, 1, and one more seed
    scores = scores_of(study.get_trials())
    assert scores[(5, 0, 0)] == DIVERGED and plan.winner(scores)[0] == 8
    assert results[0] == results[1] == scores


def test_a_resumed_study_with_other_settings_is_refused(tmp_path):
    from nas_recon.select.study import open_storage, open_study

    url = f"sqlite:///{tmp_path / 's.db'}"
    open_study(open_storage(url), "t", {"pool": 9})
    with pytest.raises(ConfigError, match="'pool' was 9, now 12"):
        open_study(open_storage(url), "t", {"pool": 12})


@pytest.mark.parametrize("url,message", [
    ("sqlite:////nonexistent-dir/x/s.db", "--storage: cannot open sqlite:////nonexistent-dir/x/s.db"),
    ("postgresql://u:secret@127.0.0.1:1/db", "--storage: cannot open postgresql://u:\\*\\*\\*@127.0.0.1:1/db"),
    ("redis://x", "--storage: expected sqlite"),
    ("journal:/nonexistent-dir/j.log", "folder /nonexistent-dir not found"),
])
def test_a_storage_that_cannot_be_opened_is_named(url, message):
    from nas_recon.select.study import open_storage

    with pytest.raises(ConfigError, match=message):
        open_storage(url)


# --- end to end: the CLI, two workers, a killed worker, SQLite and PostgreSQL -------------------------------------

TINY_RECIPE = """epochs = 9
lr = 1e-3
lr_after = 1e-4
lr_drop = 0.5
loss = "l1"
batch_size = 2
crop = 16
mask_type = "random"
accelerations = [4, 8]
max_slices = 4
val_crop = 0
val_max_slices = 0
repeats = 1
"""


def halving_args(data_root, out, recipe, *extra, target: str | None = "2"):
    return ["search", "--data", str(data_root), "--out", str(out), "--space", "macro_a", "--select", "halving",
            *(["--flops-target", target] if target else []), "--epochs", "1", "--crop", "16", "--size", str(SIZE),
            "--batch-size", "2", "--pool", "6", "--rungs", "2", "--recipe", str(recipe), "--device", "cpu", *extra]


def cli(args, timeout=600, **kw):
    return subprocess.run([sys.executable, "-m", "nas_recon", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def exactly_once(run: Path) -> dict:
    """Every job of the plan has one complete trial; no trial folder trained an epoch twice."""
    import csv

    rows = list(csv.DictReader((run / "selection" / "trials.csv").open()))
    done = [(r["candidate"], r["rung"], r["seed"]) for r in rows if r["state"] == "complete"]
    assert len(done) == len(set(done)), "a job ran twice"
    plan = json.loads((run / "selection" / "selection.json").read_text())["plan"]
    assert len(done) == sum(plan["survivors"]) + plan["survivors"][-1] * (len(plan["seeds"]) - 1), "a job was lost"
    for folder in (run / "selection" / "trials").iterdir():
        epochs = [int(r["epoch"]) for r in csv.DictReader((folder / "train_log.csv").open())]
        assert epochs == list(range(len(epochs))), folder
    return {"rows": rows, "genotype": json.loads((run / "genotype.json").read_text())}


def storage_cases():
    return ["sqlite", "postgresql"]


def mid_job(trials: Path, rung_epochs: int) -> bool:
    """True once a trial folder has logged an epoch short of its rung's end (the job is mid-way)."""
    for log in trials.glob("*/train_log.csv"):
        epochs = [line.split(",", 1)[0] for line in log.read_text().splitlines()[1:]]
        if epochs and epochs[-1].isdigit() and 0 < int(epochs[-1]) < rung_epochs:
            return True
    return False


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server of its own: initdb into a temp folder, pg_ctl on a unix socket, stopped at the end."""
    bindir = next((Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None) \
        if Path("/usr/lib/postgresql").is_dir() else None
    initdb = shutil.which("initdb") or (str(bindir / "initdb") if bindir and (bindir / "initdb").is_file() else None)
    pg_ctl = shutil.which("pg_ctl") or (str(bindir / "pg_ctl") if bindir and (bindir / "pg_ctl").is_file() else None)
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL binary (initdb, pg_ctl) on this machine: the PostgreSQL storage case needs one")
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver psycopg2 (pip install -e '.[test]') is missing")
    root = Path(tempfile.mkdtemp(prefix="nasrecon-pg-", dir="/tmp"))
    os.chmod(root, 0o755)
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, sock = root / "data", root
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "nasrecon"], check=True,
                   capture_output=True)
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                    f"-k {sock} -c listen_addresses=''", "start"], check=True, capture_output=True)
    try:
        import psycopg2

        conn = psycopg2.connect(dbname="postgres", user="nasrecon", host=str(sock))
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE nasrecon")
        conn.close()
        yield f"postgresql+psycopg2://nasrecon@/nasrecon?host={sock}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("kind", storage_cases())
def test_two_workers_run_every_trial_once_and_a_killed_worker_is_resumed(kind, data_root, tmp_path, request):
    """`--workers 2` on one storage: every job once, none lost; then a run killed mid-trial (kill -9) leaves a study
    that `--resume` completes, the killed job failed once and run again from its candidate's checkpoint."""
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    storage = ["--storage", request.getfixturevalue("postgres_url")] if kind == "postgresql" else []
    a = cli(halving_args(data_root, tmp_path / "two", recipe, "--workers", "2", *storage,
                         *(["--seed", "7"] if kind == "postgresql" else [])))
    assert a.returncode == 0, a.stderr
    first = exactly_once(tmp_path / "two")
    workers = {r["worker"] for r in first["rows"] if r["state"] == "complete"}
    assert len(workers) == 2, "both workers trained"
    assert first["genotype"]["select"] == "halving" and first["genotype"]["version"] == 2
    # kill -9 in the middle of a trial, then resume
    run = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, "-m", "nas_recon", *halving_args(data_root, run, recipe, *storage,
                                                                          "--seed", "11" if storage else "3")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not mid_job(run / "selection" / "trials", 3):
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (run / "genotype.json").exists()
    b = cli([*halving_args(data_root, run, recipe, *storage, "--seed", "11" if storage else "3"), "--resume"])
    assert b.returncode == 0, b.stderr
    second = exactly_once(run)
    assert any(r["state"] == "fail" and not r["diverged"] for r in second["rows"]), "the killed trial is failed"


def test_a_study_whose_every_finalist_diverged_writes_no_genotype(tmp_path):
    from nas_recon.errors import NasReconError
    from nas_recon.select.halving import Selection, finish
    from nas_recon.select.pool import Candidate
    from nas_recon.select.study import open_storage, open_study, work
    from nas_recon.select.trial import TrialSetup
    from nas_recon.train.recipe import Recipe

    space = load_space("macro_a")
    band = parse_flops_target("like:dccnn-3")
    rng = np.random.default_rng(0)
    pool = [Candidate(random_network(space, band, rng), "random") for _ in range(3)]
    save_genotype(pool[0].genotype, tmp_path / "darts_genotype.json")
    plan = make_plan(3, 3, 2, 3, (0,))
    (tmp_path / "selection").mkdir()
    sel = Selection(tmp_path, space, band, pool, plan, TrialSetup("", tmp_path / "selection", Recipe(epochs=3), 32,
                                                                  "cpu"), {}, f"sqlite:///{tmp_path / 's.db'}")
    study = open_study(open_storage(sel.storage), "t", {})

    def job(j):
        if j.rung == 1:
            raise Diverged("loss became inf")
        return 20.0 + j.candidate

    scores = work(study, plan, job, poll_s=0.01)
    with pytest.raises(NasReconError, match="every finalist diverged; no genotype written"):
        finish(sel, study, scores)
    assert not (tmp_path / "genotype.json").exists()
    record = json.loads((tmp_path / "selection" / "selection.json").read_text())
    assert record["winner"] is None and record["finalists"] == []  # the finalist diverged: never selected


@pytest.mark.parametrize("extra,message", [
    (["--flops-target", "900"], "--flops-target: no cell of space 'macro_a' lies within 900.00 G"),
    (["--flops-target", "2", "--flops-band", "0"], "--flops-band: expected a fraction in \\(0, 1\\)"),
    (["--flops-target", "2", "--storage", "postgresql://u:pw@127.0.0.1:1/db"], "--storage: cannot open"),
    (["--flops-target", "2", "--workers", "64"], "--workers 64: this machine has"),
    (["--flops-target", "2", "--rungs", "9"], "--rungs 9: the recipe's 9 epochs cannot make 9 rungs"),
    ([], "--select halving: needs --flops-target"),
])
def test_bad_selection_settings_are_refused_before_any_work(data_root, tmp_path, extra, message):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    out = tmp_path / "run"
    r = cli(halving_args(data_root, out, recipe, *extra, target=None), timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert __import__("re").search(message, lines[0]), lines[0]
    assert not out.exists()


def test_a_resumed_search_with_changed_selection_settings_is_refused(data_root, tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"kind": "search", "version": "0.1.0", "config": {
        "data": str(data_root), "space": "macro_a", "select": "halving", "flops_target": "2", "pool": 6, "rungs": 2,
        "recipe": str(recipe), "epochs": 1, "crop": 16, "size": SIZE, "batch_size": 2}}))
    before = (out / "run.json").read_bytes()
    r = cli([*halving_args(data_root, out, recipe), "--pool", "9", "--resume"], timeout=120)
    assert r.returncode == 2 and "setting 'pool' was 6, now 9" in r.stderr, r.stderr
    assert (out / "run.json").read_bytes() == before  # nothing else written (the run lock's empty file aside)
    assert sorted(p.name for p in out.iterdir() if p.name != ".nas-recon.lock") == ["run.json"]


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_a_macro_genotype_exports_and_computes_the_same(tmp_path, fmt):
    """A version-2 genotype (chain cells, shared body, soft DC) through the one builder, exported: the same output."""
    from nas_recon.evaluate.export import export_model
    from nas_recon.models.registry import spec_for_genotype

    g = chain(ops=("sep_conv_5x5", "conv_3x3"), cascades=4, cells=2, channels=8, shared=True, dc="soft")
    torch.manual_seed(0)
    model = build_model(spec_for_genotype(g)).eval()
    x = torch.randn(1, 2, 16, 16)
    mask = torch.zeros(1, 1, 1, 16)
    mask[..., 4:12] = 1
    with torch.no_grad():
        ref = model(x, x * mask, mask).numpy()
    out = export_model(model, fmt, tmp_path / "m.bin", size=16)
    if fmt == "torchscript":
        got = torch.jit.load(str(out))(x, x * mask, mask).detach().numpy()
    else:
        ort = pytest.importorskip("onnxruntime")
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x.numpy(), "kspace": (x * mask).numpy(), "mask": mask.numpy()})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-3)
