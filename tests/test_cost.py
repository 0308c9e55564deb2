"""Cost: hand counts, thop agreement, size scaling, the reference report, random genotypes in a FLOPs band."""

import json
from dataclasses import replace

import pytest
from conftest import EXAMPLE

from nas_recon.cli.main import main
from nas_recon.cost import conv_macs, latency_ms
from nas_recon.genotype import genotype_from_dict, load_genotype
from nas_recon.models.registry import ModelSpec, build_model, count_params, spec_for_genotype
from nas_recon.paths import shipped_dir
from nas_recon.report.costs import reference_report
from nas_recon.select.sample import genotype_macs, sample_genotypes
from nas_recon.space import load_space


def dccnn_macs(n, hw, c=32, cascades=3):
    per = 2 * c * 9 + n * 2 * c * c * 9 + c * 2 * 9
    return cascades * per * hw


@pytest.mark.parametrize("name,expected", [
    ("dccnn-3", lambda hw: dccnn_macs(3, hw)),
    ("modl-3", lambda hw: dccnn_macs(3, hw)),  # shared body, still run in all 3 cascades
    ("rdn-2", lambda hw: 3 * (2 * 32 * 9 + 2 * 3 * 32 * 32 * 9 + 32 * 2 * 9) * hw),  # block applied twice
])
def test_baseline_macs_equal_hand_count(name, expected):
    assert conv_macs(build_model(ModelSpec(name)), 24) == expected(24 * 24)


def test_searched_macs_equal_hand_count():
    g = genotype_from_dict(EXAMPLE)
    hw, c, n = 16 * 16, 32, 3
    stem = 2 * c * 9 + c * c * 9
    pre = (c * c * 2) + (c * c + n * c * c) + 2 * (n * c * c)
    ops = 3 * 6 * (9 * c + c * c)
    out = n * c * 2 * 9
    assert conv_macs(build_model(spec_for_genotype(g)), 16) == 3 * (stem + pre + ops + out) * hw


@pytest.mark.parametrize("name", ["dccnn-3", "modl-3", "rdn-3", "unet"])
def test_flops_scale_with_size_squared_and_params_do_not_change(name):
    m = build_model(ModelSpec(name))
    assert conv_macs(m, 64) == 4 * conv_macs(m, 32)
    assert "total_ops" not in dict(m.named_buffers()) and not any("total_ops" in k for k in m.state_dict())


def test_zero_filled_costs_nothing_and_latency_is_positive():
    zf = build_model(ModelSpec("zero-filled"))
    assert count_params(zf) == 0 and conv_macs(zf, 32) == 0
    assert latency_ms(build_model(ModelSpec("rdn-1", channels=8)), 32, repeats=3) > 0


def test_cost_cli_json(capsys):
    assert main(["cost", "--model", "dccnn-3", "--size", "32", "--json", "--repeats", "2"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["params"] == count_params(build_model(ModelSpec("dccnn-3")))
    assert d["flops"] == dccnn_macs(3, 32 * 32) and d["latency_ms"] > 0 and d["device"] == "cpu"
    assert main(["cost", "--model", "tv", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["flops"] is None
    assert main(["cost", "--model", "resnet-3"]) == 2


def test_committed_reference_report_matches_a_fresh_computation():
    committed = json.loads((shipped_dir("reports") / "cost-320.json").read_text())
    fresh, md = reference_report(320)
    assert committed["rows"] == fresh["rows"], "reports/cost-320.json is stale: run nas-recon cost --reference"
    assert (shipped_dir("reports") / "cost-320.md").read_text() .split("\n", 4)[4] == md.split("\n", 4)[4]
    names = {r["model"] for r in fresh["rows"]}
    assert {"dccnn-3", "dccnn-11", "modl-3", "modl-11", "rdn-3", "rdn-8", "unet"} <= names
    assert {"all_conv_2nodes", "all_conv_3nodes", "all_conv_4nodes"} <= names


def test_random_genotypes_validate_and_respect_the_flops_band(tmp_path):
    like = load_genotype(shipped_dir("search_spaces") / "examples" / "paper_a_example.json")
    gs = sample_genotypes(load_space("paper_a"), 4, seed=1, like=like, tolerance=0.1)
    ref = genotype_macs(like)
    assert len({g.cell for g in gs}) == 4
    for g in gs:
        assert abs(genotype_macs(g) - ref) <= 0.1 * ref
        genotype_from_dict(g.to_dict())  # validates
    again = sample_genotypes(load_space("paper_a"), 4, seed=1, like=like, tolerance=0.1)
    assert [g.cell for g in again] == [g.cell for g in gs]
    biased = sample_genotypes(load_space("paper_a"), 2, seed=1, like=replace(like, bias=True), tolerance=0.1)
    assert all(g.bias for g in biased)  # random cells are drawn like the reference, --cell-bias included
    assert main(["sample", "--space", "paper_b", "--n", "3", "--seed", "2", "--out", str(tmp_path / "r")]) == 0
    files = sorted((tmp_path / "r").glob("*.json"))
    assert len(files) == 3 and all(load_genotype(f).space == "paper_b" for f in files)


def test_multicoil_cost_counts_each_coil_where_a_network_sees_coils(capsys):
    """Cascade networks convolve the coil-combined image: their MACs do not depend on the coil count or aspect
    beyond the pixel count; E2E-VarNet's sensitivity U-Net runs once per coil."""
    dc = build_model(ModelSpec("dccnn-3"))
    assert conv_macs(dc, 32, coils=4) == conv_macs(dc, 32) == dccnn_macs(3, 32 * 32)
    assert conv_macs(dc, 32, coils=4, width=16) == dccnn_macs(3, 32 * 16)
    var = build_model(ModelSpec("varnet-small"))
    one, four, eight = (conv_macs(var, 32, coils=c) for c in (1, 4, 8))
    assert one < four < eight and (eight - four) * 3 == (four - one) * 4  # a + b x coils
    assert main(["cost", "--model", "varnet-small", "--size", "32", "--width", "24", "--coils", "3", "--json",
                 "--repeats", "1"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["coils"], d["size"], d["width"]) == (3, 32, 24) and d["flops"] == conv_macs(var, 32, 3, 24)
