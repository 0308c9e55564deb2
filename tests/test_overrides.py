"""No silent override: an explicit flag takes effect or is refused with the reason (issue 20, class 4)."""

import json

from conftest import SIZE

from nas_recon.cli.main import main


def test_explicit_crop_and_batch_size_reach_the_unet(data_root, tmp_path):
    out = tmp_path / "u"
    argv = ["retrain", "--model", "unet", "--data", str(data_root), "--out", str(out), "--recipe", "quick",
            "--epochs", "1", "--crop", "32", "--batch-size", "2", "--size", str(SIZE), "--device", "cpu"]
    assert main(argv) == 0
    recipe = json.loads((out / "run.json").read_text())["recipe"]
    assert (recipe["crop"], recipe["batch_size"]) == (32, 2)  # the quick recipe's U-Net batch (1) used to win


def test_cost_write_without_reference_is_refused(tmp_path, capsys):
    target = tmp_path / "c"
    assert main(["cost", "--model", "dccnn-3", "--write", str(target), "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert "--write" in err and "--reference" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_a_folder_named_like_a_shipped_recipe_or_space_does_not_shadow_it(tmp_path, monkeypatch):
    from nas_recon.space import load_space
    from nas_recon.train.recipe import load_recipe

    for name in ("quick", "long", "paper_a"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_recipe("long").epochs == 80 and load_recipe("quick").epochs == 8
    assert load_space("paper_a").name == "paper_a"
    (tmp_path / "mine.toml").write_text("epochs = 3\n")
    assert load_recipe("mine.toml").epochs == 3 and load_recipe("./mine.toml").epochs == 3


def test_ctrl_c_advice_names_only_what_the_command_has():
    from nas_recon.cli.main import interrupt_advice

    assert "--resume" in interrupt_advice("search") and "--resume" in interrupt_advice("retrain")
    assert "rerun the same command" in interrupt_advice("demo")
    for cmd in ("data", "report", "evaluate", "reconstruct", "export", "sample"):
        assert "--resume" not in interrupt_advice(cmd) and "again" in interrupt_advice(cmd)


def test_data_check_takes_one_file(data_root, capsys):
    f = data_root / "train" / "train0.h5"
    assert main(["data", "check", str(f), "--size", str(SIZE)]) == 0
    assert "1 volumes" in capsys.readouterr().out
