"""Integration: the demo pipeline end to end on the tiny budget (the main job must never silently break)."""

import json

import pytest

from nas_recon.cli.main import main
from nas_recon.evaluate.metrics import METRICS
from nas_recon.genotype import load_genotype

PAPER = ["--space", "paper_a", "--select", "alpha"]  # the paper's demo (the default is the macro space's selection)


@pytest.mark.slow
@pytest.mark.realsource
def test_tiny_demo_end_to_end_and_rerun_continues(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--budget", "tiny", "--out", str(out), "--device", "cpu", *PAPER]) == 0
    report = json.loads((out / "report" / "report.json").read_text())
    models = {r["model"] for r in report["rows"]}
    assert {"zero-filled", "searched", "dccnn-3", "unet", "random_00"} <= models
    for r in report["rows"]:
        assert r["acceleration"] in ("4x", "8x")
        assert all(set(r[m]) == {"mean", "std", "n"} for m in METRICS)
    md = (out / "report" / "report.md").read_text()
    assert "### 4x" in md and "### 8x" in md and "searched" in md
    for png in ("psnr_vs_flops.png", "images.png", "training_curves.png", "cell-search.png", "alphas-search.png",
                "decision-search.png"):
        assert (out / "report" / png).stat().st_size > 1000, png
    assert "Learning curves" in md and "Final margin" in md
    # learning curves start at the untrained model: step 0, then one row per epoch with steps and wall time
    log = (out / "runs" / "searched" / "train_log.csv").read_text().splitlines()
    assert log[0].endswith("step,wall_seconds") and log[1].startswith("0,,")
    cell = next(c for c in report["searched_cells"])
    assert isinstance(cell["decided"], bool) and cell["final_margin"] >= 0
    g = load_genotype(out / "search" / "genotype.json")
    assert g.nodes == 3
    # report numbers are evaluate's numbers
    cached = json.loads((out / "runs" / "dccnn-3" / "metrics-test.json").read_text())
    row = next(r for r in report["rows"] if r["model"] == "dccnn-3" and r["acceleration"] == "4x")
    assert row["psnr"] == cached["aggregate"]["4x"]["psnr"]
    # a rerun continues: nothing is retrained, the report is rebuilt from the same checkpoints
    before = (out / "runs" / "searched" / "last.pt").stat().st_mtime_ns
    assert main(["demo", "--budget", "tiny", "--out", str(out), "--device", "cpu", *PAPER]) == 0
    assert (out / "runs" / "searched" / "last.pt").stat().st_mtime_ns == before
    again = json.loads((out / "report" / "report.json").read_text())["rows"]

    def strip(rows):  # latency is measured anew; everything else must be identical
        return [{k: v for k, v in r.items() if k != "latency_ms"} for r in rows]

    assert strip(again) == strip(report["rows"])


@pytest.mark.slow
@pytest.mark.realsource
def test_tiny_multicoil_demo_end_to_end(tmp_path, capsys):
    """`demo --coils 4` on the tiny budget: simulated coils, one ESPIRiT cache, E2E-VarNet among the baselines,
    costs and the report at the coil count; the same folder refuses another coil count."""
    out = tmp_path / "demo"
    assert main(["demo", "--budget", "tiny", "--coils", "4", "--out", str(out), "--device", "cpu", *PAPER]) == 0
    report = json.loads((out / "report" / "report.json").read_text())
    models = {r["model"] for r in report["rows"]}
    assert {"zero-filled", "searched", "dccnn-3", "unet", "varnet-small", "random_00"} <= models
    assert report["settings"]["coils"] == 4 and report["settings"]["size"] == 160  # raised for 8x calibration
    assert any("varnet-small: E2E-VarNet in a smaller configuration" in n for n in report["notes"])
    maps = sorted((out / "maps").glob("*.npy"))
    assert maps and all(json.loads((out / "runs" / r / "run.json").read_text())["coils"] == 4
                        for r in ("searched", "dccnn-3", "varnet-small"))
    assert not any((out / "runs" / r / "maps").exists() for r in ("searched", "dccnn-3"))  # one shared cache
    for r in report["rows"]:
        assert 0 <= r["ssim"]["mean"] <= 1 and r["psnr"]["mean"] > 5
    capsys.readouterr()
    assert main(["demo", "--budget", "tiny", "--coils", "6", "--out", str(out), "--device", "cpu", *PAPER]) == 2
    err = capsys.readouterr().err
    assert "--coils 4" in err and "use another --out" in err


@pytest.mark.slow
@pytest.mark.realsource
def test_tiny_halving_demo_compares_at_equal_cost(tmp_path):
    """The default demo: macro_a, DARTS proposes, successive halving decides at DC-CNN-3's FLOPs; the report
    compares the selected network with DC-CNN-3 and MoDL-3 at the target's width and with random networks of the
    band, and says which space and selection ran; a rerun trains nothing."""
    out = tmp_path / "demo"
    assert main(["demo", "--budget", "tiny", "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads((out / "report" / "report.json").read_text())
    models = {r["model"] for r in report["rows"]}
    assert {"zero-filled", "searched", "dccnn-3", "modl-3", "random_00", "random_01"} <= models
    assert "unet" not in models  # 21.3 GFLOPs: above the target, not an equal-cost baseline
    g = load_genotype(out / "search" / "genotype.json")
    assert g.chain and g.extra["select"] == "halving" and g.version == 2
    sec = report["equal_cost"][0]
    assert sec["band"]["source"] == "like:dccnn-3" and {h["model"] for h in sec["handcrafted"]} == {"dccnn-3",
                                                                                                   "modl-3"}
    assert sec["random"]["4x"]["psnr"]["n"] == 2 and sec["selection_cost"]["retrainings"] > 0
    md = (out / "report" / "report.md").read_text()
    assert "## At equal cost" in md and "space macro_a" in md and "--select halving" in md
    assert (out / "report" / "front.png").stat().st_size > 1000
    for f in ("trials.csv", "rungs.csv", "candidates.csv", "selection.json"):
        assert (out / "search" / "selection" / f).is_file(), f
    before = (out / "runs" / "searched" / "last.pt").stat().st_mtime_ns
    assert main(["demo", "--budget", "tiny", "--out", str(out), "--device", "cpu"]) == 0
    assert (out / "runs" / "searched" / "last.pt").stat().st_mtime_ns == before


def test_demo_baselines_chooses_the_handcrafted_networks(tmp_path, capsys):
    """`demo --baselines`: the seed reports' networks beside the searched one; an unregistered name is refused in
    one line that lists the registered ones, before anything is written."""
    out = tmp_path / "demo"
    assert main(["demo", "--budget", "tiny", "--out", str(out), "--device", "cpu", *PAPER,
                 "--baselines", "squeeze-unet-small", "nonet-3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nonet-3" in err and "dircn-small" in err and "\n" not in err and not out.exists()
    assert main(["demo", "--budget", "tiny", "--out", str(out), "--device", "cpu", *PAPER,
                 "--baselines", "squeeze-unet-small"]) == 0
    models = {r["model"] for r in json.loads((out / "report" / "report.json").read_text())["rows"]}
    assert "squeeze-unet-small" in models and not models & {"dccnn-3", "unet"}
