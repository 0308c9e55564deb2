"""The NNI adapter: the internals nas-recon uses are checked, a change is named, and nothing else touches NNI."""

import re
from pathlib import Path

import pytest
from conftest import SIZE

import nas_recon
from nas_recon.errors import NasReconError
from nas_recon.search import nni_api
from nas_recon.search.nni_api import DartsLightningModule, DifferentiableMixedCell, check_nni

PACKAGE = Path(nas_recon.__file__).parent
INTERNALS = re.compile(r"^\s*(from|import) nni\b|_arch_alpha|\._softmax\b|/in_cell|2 \* batch_idx|args\[7\]|"
                       r"configure_architecture_optimizers|BaseSuperNetModule|GumbelSoftmax", re.M)


@pytest.fixture(autouse=True)
def fresh_check():
    check_nni.cache_clear()
    yield
    check_nni.cache_clear()


def test_installed_nni_passes_the_check():
    check_nni()


def test_only_the_adapter_touches_nni_internals():
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p.name != "nni_api.py" and INTERNALS.search(p.read_text())]
    assert offenders == []


def test_a_removed_hook_is_named(monkeypatch):
    monkeypatch.setattr(DartsLightningModule, "advance_lr_schedulers", None)
    with pytest.raises(NasReconError, match=r"DartsLightningModule\.advance_lr_schedulers is gone.*nni==3\.0"):
        check_nni()


def test_a_moved_memo_argument_is_named(monkeypatch):
    def init(self, op_factory, num_nodes, num_ops_per_node, num_predecessors, preprocessor, postprocessor,
             memo, concat_dim, mutate_kwargs, label):  # memo and concat_dim swapped
        raise AssertionError("not called")

    monkeypatch.setattr(DifferentiableMixedCell, "__init__", init)
    with pytest.raises(NasReconError, match="no longer takes 'memo' at position 7"):
        check_nni()


def test_renamed_alpha_keys_are_named(monkeypatch):
    monkeypatch.setattr(nni_api, "edge_key", lambda node, source, label="cell": f"{label}/edge_{node}_{source}")
    with pytest.raises(NasReconError, match=r"alpha keys are \['cell/2_0', 'cell/2_1'\]"):
        check_nni()


def test_search_stops_with_one_line_before_writing(monkeypatch, data_root, tmp_path, capsys):
    from nas_recon.cli.main import main

    monkeypatch.setattr(DartsLightningModule, "architecture_optimizers", None)
    out = tmp_path / "search"
    code = main(["search", "--data", str(data_root), "--out", str(out), "--size", str(SIZE), "--crop", "16"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "architecture_optimizers is gone" in err and "\n" not in err
    assert not out.exists()
