"""Budgets and recipes: the long budget, the demo's space option, the report's budget notes."""

import json

import pytest

from nas_recon.cli.main import main
from nas_recon.errors import ConfigError
from nas_recon.pipelines.demo import BUDGETS, budget_recipe
from nas_recon.report.build import budget_notes, decision_points, label_offsets, rungs_sentence
from nas_recon.report.evidence import evidence_path, read_evidence
from nas_recon.train.recipe import load_recipe


def test_long_budget_is_the_papers_80_epochs_of_the_quick_recipe():
    quick, long = load_recipe("quick").to_dict(), load_recipe("long").to_dict()
    assert long["epochs"] == 80 and {k: v for k, v in long.items() if k != "epochs"} == {
        k: v for k, v in quick.items() if k != "epochs"}
    b = BUDGETS["long"]
    assert b.recipe == "long" and b.search_epochs == 50 and budget_recipe(b).epochs == 80
    # 36 training slices of the demo data, drawn twice an epoch, batch 4: 18 steps an epoch, 1440 in all
    r = budget_recipe(b)
    assert 36 * r.repeats // r.batch_size * r.epochs == 1440


def test_demo_refuses_another_space_in_a_used_folder_and_an_unknown_space(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "demo.json").write_text(json.dumps({"budget": "tiny", "seed": 0, "cell_bias": False}))
    assert main(["demo", "--budget", "tiny", "--out", str(out), "--space", "mixed_a"]) == 2
    assert "space 'paper_a'" in capsys.readouterr().err
    assert main(["demo", "--budget", "tiny", "--out", str(tmp_path / "e"), "--space", "no_such_space"]) == 2
    assert "no_such_space" in capsys.readouterr().err and not (tmp_path / "e").exists()


def test_decision_plot_leaves_out_the_first_epochs_drift_placeholder():
    rows = [{"epoch": "1", "drift": "1.0", "chosen_margin": "0.0002"},
            {"epoch": "2", "drift": "0.004", "chosen_margin": "0.0"},
            {"epoch": "3", "drift": "0.003", "chosen_margin": "0.0005"}]
    assert decision_points(rows, "drift") == [(2, 0.004), (3, 0.003)]
    assert decision_points(rows, "chosen_margin") == [(1, 0.0002), (3, 0.0005)]  # a tie (0) is off a log axis


def test_labels_of_models_sharing_a_cost_do_not_overlap():
    pts = [(17.34, 31.11), (17.34, 30.85), (14.57, 27.8), (17.30, 31.0)]  # dccnn-3, modl-3, searched, near-equal
    offs = label_offsets(pts)
    same = [offs[i] for i in (0, 3, 1)]  # the same cost, in order of PSNR
    assert [o[1] for o in same] == [4.0, -5.0, -14.0] and offs[2] == (5.0, 4.0)


EVIDENCE = read_evidence()


def train_log(run, steps: int) -> None:
    run.mkdir(exist_ok=True)
    (run / "train_log.csv").write_text("epoch,train_loss,val_psnr,val_ssim,lr,seconds,step,wall_seconds\n"
                                       f"8,0.3,27,0.7,0.001,1,{steps},10\n")


def test_the_shipped_evidence_file_is_read_and_names_every_measured_space():
    assert evidence_path().is_file() and EVIDENCE["format"] == "nas-recon-evidence"
    assert {"paper_a, bias-free", "mixed_a, biased"} <= set(EVIDENCE["cell_search"])
    assert "macro_a" in EVIDENCE["selection"] and EVIDENCE["supernet_fidelity"]


@pytest.mark.parametrize("net", sorted(EVIDENCE["cell_search"]))
def test_budget_note_for_every_measured_cell_network(tmp_path, net):
    space, bias = net.split(", ")
    run = tmp_path / "r"
    train_log(run, 144)
    meta = {"model": {"name": "searched", "genotype": {"space": space, "bias": bias == "biased"}}}
    notes = budget_notes([{"path": run, "meta": meta, "label": "searched"}], EVIDENCE, [])
    pays = EVIDENCE["cell_search"][net]["pays_at_steps"]
    if pays is None or pays > 144:
        assert len(notes) == 1 and net in notes[0] and "144 steps" in notes[0]
    else:
        assert notes == []
    other = {"model": {"name": "searched", "genotype": {"space": "custom", "bias": False}}}
    assert "no budget has been measured" in budget_notes([{"path": run, "meta": other, "label": "s"}], EVIDENCE,
                                                         [])[0]
    baseline = {"model": {"name": "dccnn-3"}}
    assert budget_notes([{"path": run, "meta": baseline, "label": "dccnn-3"}], EVIDENCE, []) == []


def selected_meta(origin: str) -> dict:
    return {"model": {"name": "searched", "genotype": {"space": "macro_a", "bias": True}},
            "genotype_extra": {"select": "halving", "selection": {"origin": origin}}}


def margins(psnr: float, ssim: float) -> list[dict]:
    return [{"margins": [{"model": "searched", "acceleration": "4x", "psnr_vs_best_handcrafted": psnr,
                          "ssim_vs_every_handcrafted": ssim}]}]


def test_a_selection_that_did_not_win_says_so_and_names_the_budget_measured_to_pay(tmp_path):
    run = tmp_path / "r"
    train_log(run, 144)
    entry = {"path": run, "meta": selected_meta("handcrafted"), "label": "searched"}
    (note,) = budget_notes([entry], EVIDENCE, margins(0.0, -0.007))
    budget = EVIDENCE["selection"]["macro_a"]["budget"]
    assert "did not beat every handcrafted network" in note and "ties that network" in note
    assert f"demo --budget {budget}" in note and "144 steps" in note
    assert budget_notes([entry], EVIDENCE, margins(0.4, 0.01)) == []  # it won: nothing to say
    entry["meta"]["model"]["genotype"]["space"] = "custom"
    (note,) = budget_notes([entry], EVIDENCE, margins(-0.1, 0.01))
    assert "has not been measured" in note


@pytest.mark.parametrize("text,why", [
    ('{"format": "nas-recon-evidence", "version": 1, "cell_search": {"x": {"pays_at_steps": NaN, '
     '"measured_up_to_steps": 5}}}', "not strict JSON"),
    ('{"format": "nas-recon-evidence", "version": 1, "cell_search": {"x": {"pays_at_steps": null, '
     '"measured_up_to_steps": -5}}}', "measured_up_to_steps"),
    ('{"format": "nas-recon-evidence", "version": 1, "selection": {"macro_a": {"pays_at_steps": 432}}}',
     "selection.macro_a.budget"),
    ('{"format": "other"}', "nas-recon-evidence"),
    ('{"format": "nas-recon-evidence", "vers', "unreadable"),
])
def test_a_damaged_evidence_file_is_refused_in_one_line(tmp_path, text, why):
    path = tmp_path / "evidence.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=why) as e:
        read_evidence(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert read_evidence(tmp_path / "absent.json") == {}


def test_rungs_sentence_says_whether_each_rung_predicted_the_next():
    rungs = [{"rung": 0, "epochs": 8, "candidates": 18, "tau_with_next": 0.333},
             {"rung": 1, "epochs": 24, "candidates": 6, "tau_with_next": ""}]
    text = rungs_sentence(rungs)
    assert "8 -> 24 epochs: tau +0.33 (6 candidates)" in text
    assert "One rung" in rungs_sentence(rungs[:1])
