"""`data undersample` (issue 31, its first part): fastMRI's test layout from fully sampled files, seeded masks,
test/ kept with its references, and the supervised commands' refusal of such a folder."""

import json

import h5py
import numpy as np
from conftest import SIZE, write_volume

from nas_recon.cli.main import main


def test_undersampled_folder_is_fastmris_test_layout(data_root, tmp_path, capsys):
    out = tmp_path / "u"
    assert main(["data", "undersample", "--data", str(data_root), "--out", str(out), "--acceleration", "4"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["acceleration"] == 4 and set(manifest["files"]) == {
        f"{s}/{p.name}" for s in ("train", "val", "test") for p in (data_root / s).glob("*.h5")}
    masks = []
    for src in sorted((data_root / "train").glob("*.h5")):
        with h5py.File(src) as f, h5py.File(out / "train" / src.name) as g:
            full, k, m = f["kspace"][()], g["kspace"][()], g["mask"][()].astype(bool)
            assert "reconstruction_esc" not in g and "reconstruction_rss" not in g
            assert np.array_equal(k[..., m], full[..., m]) and not k[..., ~m].any()
            assert 0.15 < m.mean() < 0.4 and g.attrs["num_low_frequency"] >= 2
            masks.append(m)
    assert any(not np.array_equal(masks[0], m) for m in masks[1:])  # one mask per volume, by file name
    with h5py.File(out / "test" / next((data_root / "test").glob("*.h5")).name) as g:
        assert "mask" not in g  # test keeps its references for evaluation
    again = tmp_path / "again"
    assert main(["data", "undersample", "--data", str(data_root), "--out", str(again)]) == 0
    for p in (out / "train").glob("*.h5"):
        with h5py.File(p) as a, h5py.File(again / "train" / p.name) as b:
            assert np.array_equal(a["mask"][()], b["mask"][()])  # seeded
    assert main(["data", "check", str(out / "train"), "--size", str(SIZE)]) == 0
    capsys.readouterr()
    run = tmp_path / "r"
    assert main(["retrain", "--model", "dccnn-1", "--data", str(out), "--out", str(run), "--size", str(SIZE)]) == 2
    err = capsys.readouterr().err.strip()
    assert "'mask'" in err and "\n" not in err and not run.exists()


def test_an_existing_output_or_a_missing_split_is_refused_and_nothing_is_left(data_root, tmp_path, capsys):
    out = tmp_path / "u"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["data", "undersample", "--data", str(data_root), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and (out / "mine.txt").read_text() == "keep"
    bare = tmp_path / "bare"
    (bare / "train").mkdir(parents=True)
    write_volume(bare / "train" / "t.h5", slices=1)
    assert main(["data", "undersample", "--data", str(bare), "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert "val/" in err and "\n" not in err and not (tmp_path / "v").exists()
    assert not list(tmp_path.glob(".v.tmp-*"))


def test_undersampling_an_undersampled_folder_is_refused_and_leaves_nothing(data_root, tmp_path, capsys):
    once = tmp_path / "once"
    assert main(["data", "undersample", "--data", str(data_root), "--out", str(once)]) == 0
    capsys.readouterr()
    twice = tmp_path / "twice"
    assert main(["data", "undersample", "--data", str(once), "--out", str(twice)]) == 2
    err = capsys.readouterr().err.strip()
    assert "already undersampled" in err and "\n" not in err
    assert not twice.exists() and not list(tmp_path.glob(".twice.tmp-*"))
