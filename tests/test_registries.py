"""Registries: strategies and selections are chosen by name in one place, and the CLI offers what is registered."""

import re
from pathlib import Path

import pytest

import nas_recon
from nas_recon.cli.main import main
from nas_recon.errors import ConfigError
from nas_recon.search.selections import SELECTIONS, Selection, register_selection, retrained, selection
from nas_recon.search.strategies import STRATEGIES, Strategy, register_strategy

PACKAGE = Path(nas_recon.__file__).parent
REGISTRATIONS = {PACKAGE / "search" / "strategies.py", PACKAGE / "search" / "selections.py"}


def test_the_search_help_offers_every_registered_strategy_and_selection(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in [*STRATEGIES, *SELECTIONS]:
        assert name in text


def test_a_name_registers_once():
    with pytest.raises(ValueError, match="already registered"):
        register_strategy(Strategy("darts", "again", "darts"))
    with pytest.raises(ValueError, match="already registered"):
        register_selection(Selection("alpha", "again"))


def test_selection_traits_drive_the_search_not_names():
    assert [n for n, s in SELECTIONS.items() if s.retrains] == ["halving"]
    assert retrained("halving") and not retrained("alpha") and not retrained(None) and not retrained("no-such")
    with pytest.raises(ConfigError, match="--select: unknown 'nope', expected alpha, perturb, halving"):
        selection("nope")


def test_no_module_outside_the_registrations_compares_a_strategy_or_selection_name():
    pattern = re.compile(r"\b(strategy|select)\s*[!=]=\s*[\"']")
    hits = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py") if p not in REGISTRATIONS
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_coil_estimators_are_registered_and_auto_takes_the_first_available():
    from nas_recon.physics.bart import available
    from nas_recon.physics.coils import COIL_ESTIMATORS, coil_estimator, espirit_backend, espirit_method

    assert list(COIL_ESTIMATORS) == ["espirit-bart", "espirit-sigpy"]
    assert coil_estimator().name == ("espirit-bart" if available() else "espirit-sigpy")
    assert espirit_backend() == coil_estimator().key and "sigpy EspiritCalib" in espirit_method("sigpy")
    with pytest.raises(ValueError, match="unknown 'learnt'"):
        coil_estimator("learnt")
