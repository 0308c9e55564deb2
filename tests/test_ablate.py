"""`nas-recon ablate`: one search + retraining per (space, nodes), one report, resumable."""

import json

import pytest

from nas_recon.cli.main import main
from nas_recon.genotype import load_genotype
from nas_recon.models.registry import count_params
from nas_recon.models.searched import build_from_genotype
from nas_recon.pipelines.ablate import space_variant
from nas_recon.space.spaces import load_space


def test_space_variant_changes_only_the_node_count(tmp_path):
    path = space_variant("paper_b", 4, tmp_path)
    a, b = load_space("paper_b"), load_space(str(path))
    assert b.nodes == 4 and (b.name, b.ops, b.cells, b.cascades, b.channels) == (a.name, a.ops, a.cells,
                                                                                  a.cascades, a.channels)


@pytest.mark.slow
@pytest.mark.realsource
def test_tiny_ablation_table_and_rerun(tmp_path, capsys):
    out = tmp_path / "abl"
    args = ["ablate", "--budget", "tiny", "--out", str(out), "--spaces", "paper_a", "--nodes", "2", "3",
            "--device", "cpu"]
    assert main(args) == 0
    report = json.loads((out / "report" / "report.json").read_text())
    rows = {r["model"].removeprefix("searched:"): r for r in report["rows"] if r["acceleration"] == "4x"}
    assert {"paper_a-n2", "paper_a-n3", "zero-filled"} <= set(rows)
    for n in (2, 3):
        g = load_genotype(out / "search" / f"paper_a-n{n}" / "genotype.json")
        assert g.nodes == n and g.space == "paper_a"
        assert rows[f"paper_a-n{n}"]["params"] == count_params(build_from_genotype(g))
    assert [c["run"] for c in report["searched_cells"]] == ["paper_a-n2", "paper_a-n3"]  # each cell drawn
    assert (out / "report" / "cell-paper_a-n3.png").is_file()
    before = (out / "runs" / "paper_a-n2" / "last.pt").stat().st_mtime_ns
    assert main(args) == 0  # a rerun continues: nothing searched or retrained again
    assert (out / "runs" / "paper_a-n2" / "last.pt").stat().st_mtime_ns == before
    capsys.readouterr()
    assert main([*args[:-5], "--nodes", "2", "--device", "cpu"]) == 2  # other settings, same folder: refused
    assert "nodes" in capsys.readouterr().err
