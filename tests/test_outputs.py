"""The output policy (nas_recon.outputs): a command replaces only what nas-recon wrote as the same kind of output.

Every command that writes a file or a multi-file folder is pointed at things it must never replace (its own
input, a checkpoint, a run record, raw k-space, a foreign file, a folder, a symlink, a FIFO): exit 2, one line
naming the file, and every pre-existing file byte-identical. Outputs of the same kind are replaced.
"""

from __future__ import annotations

import json
import os
import stat

import h5py
import pytest
from test_hostile import check_clean, fill, run, snapshot, world  # noqa: F401 - `world` is the shared fixture

CKPT = "{w}/run/best.pt"
FOREIGN = {
    "checkpoint": CKPT,
    "run record": "{w}/run/run.json",
    "raw k-space": "{w}/data/test/test0.h5",
    "foreign text": "{w}/bad/afile",
    "foreign json": "{w}/bad/list.json",
    "genotype of another kind": "{w}/g.json",
    "folder": "{w}/bad",
    "symlink": "{w}/links/to-afile",
    "fifo": "{w}/links/fifo",
}
FILE_COMMANDS = {
    "evaluate": ["evaluate", "--checkpoint", CKPT, "--data", "{w}/data/test", "--out", "{target}"],
    "evaluate-zf": ["evaluate", "--model", "zero-filled", "--data", "{w}/data/test", "--out", "{target}"],
    "export-torchscript": ["export", "--checkpoint", CKPT, "--format", "torchscript", "--out", "{target}"],
    "export-onnx": ["export", "--checkpoint", CKPT, "--format", "onnx", "--out", "{target}", "--size", "32"],
}
CASES = [(c, k) for c in FILE_COMMANDS for k in FOREIGN if not (c == "evaluate-zf" and k == "checkpoint")]


@pytest.fixture(scope="module")
def linked(world):  # noqa: F811
    """A symlink and a FIFO beside the world's files."""
    d = world / "links"
    if not d.exists():
        d.mkdir()
        os.symlink(world / "bad" / "afile", d / "to-afile")
        os.mkfifo(d / "fifo")
    return world


def snap(w):
    return {k: v for k, v in snapshot(w).items() if not k.startswith("links/fifo")}


@pytest.mark.parametrize(("cmd", "what"), CASES, ids=[f"{c}>{k}" for c, k in CASES])
def test_a_file_output_never_replaces_what_nas_recon_did_not_write_as_that_kind(linked, capsys, cmd, what):
    w = linked
    target = FOREIGN[what].replace("{w}", str(w))
    argv = [a.replace("{target}", target) for a in FILE_COMMANDS[cmd]]
    before = snap(w)
    code, err = run(fill(argv, w), capsys)
    check_clean(code, err, target if what != "folder" else "is a folder", before, snap(w))


MULTI = [
    ("reconstruct", ["reconstruct", "--checkpoint", CKPT, "--input", "{w}/data/test", "--out", "{w}/data/test"],
     "overwrite the input"),
    ("reconstruct", ["reconstruct", "--checkpoint", CKPT, "--input", "{w}/data/test", "--out", "{w}/data/val"],
     None),  # val/ holds another file of the same name? no: refused only where a name collides (set up below)
    ("reconstruct", ["reconstruct", "--checkpoint", CKPT, "--input", "{w}/data/test", "--out", "{w}/bad/afile"],
     "not a folder"),
    ("sample", ["sample", "--space", "paper_a", "--n", "2", "--seed", "0", "--out", "{w}/bad/afile"], "not a folder"),
    ("sample", ["sample", "--space", "paper_a", "--n", "2", "--seed", "0", "--out", "{w}/foreign-samples"],
     "random_00.json"),
    ("report", ["report", "--runs", "{w}/run", "--out", "{w}/bad", "--no-tv"], "did not write as a report folder"),
    ("report", ["report", "--runs", "{w}/run", "--out", "{w}/run", "--no-tv"], "is a retrain folder"),
    ("report", ["report", "--runs", "{w}/run", "--out", "{w}/bad/afile", "--no-tv"], "not a folder"),
]


@pytest.mark.parametrize(("cmd", "argv", "culprit"), [m for m in MULTI if m[2]],
                         ids=[f"{m[0]}~{m[2]}" for m in MULTI if m[2]])
def test_a_multi_file_output_checks_every_target_first_and_writes_nothing_on_refusal(linked, capsys, cmd, argv,
                                                                                      culprit):
    w = linked
    foreign = w / "foreign-samples"
    if not foreign.exists():
        foreign.mkdir()
        (foreign / "random_00.json").write_text("{\"my\": \"notes\"}\n")  # a user's file of a sample's name
    before = snap(w)
    code, err = run(fill(argv, w), capsys)
    check_clean(code, err, culprit, before, snap(w))


def test_reconstruct_replaces_its_own_files_but_not_raw_kspace_of_the_same_name(linked, capsys, tmp_path):
    w = linked
    out = tmp_path / "rec"
    argv = ["reconstruct", "--checkpoint", str(w / "run" / "best.pt"), "--input", str(w / "data" / "test"),
            "--out", str(out), "--size", "32"]
    assert run(argv, capsys)[0] == 0
    with h5py.File(out / "test0.h5") as f:
        assert f.attrs["nas_recon_format"] == "nas-recon-reconstruction" and "reconstruction" in f
    assert run(argv, capsys)[0] == 0  # a rerun replaces its own reconstructions
    other = tmp_path / "other"
    other.mkdir()
    (other / "test0.h5").write_bytes((w / "data" / "test" / "test0.h5").read_bytes())  # raw k-space, same name
    before = snapshot(other)
    code, err = run(argv[:-3] + [str(other), "--size", "32"], capsys)
    check_clean(code, err, str(other / "test0.h5"), before, snapshot(other))


def test_outputs_of_the_same_kind_are_replaced(linked, capsys, tmp_path):
    w = linked
    m = tmp_path / "m.json"
    ev = ["evaluate", "--model", "zero-filled", "--data", str(w / "data" / "test"), "--out", str(m), "--size", "32"]
    assert run(ev, capsys)[0] == 0 and run(ev, capsys)[0] == 0
    assert json.loads(m.read_text())["format"] == "nas-recon-metrics"
    ts = tmp_path / "net.pt"
    ex = ["export", "--checkpoint", str(w / "run" / "best.pt"), "--format", "torchscript", "--out", str(ts)]
    assert run(ex, capsys)[0] == 0 and run(ex, capsys)[0] == 0
    code, err = run(ex[:-1] + [str(m)], capsys)  # an export never replaces a metrics file
    assert code == 2 and str(m) in err and json.loads(m.read_text())["format"] == "nas-recon-metrics"
    code, err = run(ev[:-3] + [str(ts), "--size", "32"], capsys)  # nor evaluate an export
    assert code == 2 and str(ts) in err
    s = ["sample", "--space", "paper_a", "--n", "2", "--seed", "0", "--out", str(tmp_path / "s")]
    assert run(s, capsys)[0] == 0 and run(s, capsys)[0] == 0


def test_report_folder_knows_its_kind(linked, capsys, tmp_path):
    w = linked
    rep = tmp_path / "rep"
    argv = ["report", "--runs", str(w / "run"), "--out", str(rep), "--no-tv", "--size", "32"]
    assert run(argv, capsys)[0] == 0
    assert (rep / ".nas-recon-kind").read_text().strip() == "report"
    assert run(argv, capsys)[0] == 0  # a report folder is rewritten by a later report
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "report.json").write_text(json.dumps({"format": "nas-recon-report"}))
    (legacy / "cell-search.png").write_bytes(b"png")
    assert run(argv[:-4] + [str(legacy), "--no-tv", "--size", "32"], capsys)[0] == 0  # an older report folder


def test_data_demo_folder_follows_the_umask(tmp_path, nifti_file):
    from nas_recon.data.demo import build_demo

    old = os.umask(0o027)
    try:
        build_demo(tmp_path / "d", str(nifti_file), size=32, slices=20, seed=0)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o750  # was 0700 (mkdtemp's mode)
