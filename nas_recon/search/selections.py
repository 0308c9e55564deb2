"""Selections, registered by name: how a search turns its trained supernet into the genotype it writes.

A selection is data, like a strategy (nas_recon.search.strategies): the search, the CLI and the demo act on its
traits, and no module outside this registration compares a selection's name. Adding one: register a Selection and
give the trait it needs one branch where the search acts on it (its derivation in nas_recon.search.run, or a
stage after the search as nas_recon.select.halving is).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Selection:
    """A selection's traits."""

    name: str
    help: str
    perturbation: bool = False  # ranks ops by DARTS-PT's perturbation of the trained supernet (every op mixed)
    retrains: bool = False  # a pool inside a FLOPs band, retrained and scored on val/ (needs --flops-target)
    writes: str = "genotype.json"  # the file the search stage writes its cell to


SELECTIONS: dict[str, Selection] = {}


def register_selection(s: Selection) -> Selection:
    """Add a selection under its name."""
    if s.name in SELECTIONS:
        raise ValueError(f"selection '{s.name}' is already registered")
    SELECTIONS[s.name] = s
    return s


def selection(name: str, flag: str = "--select") -> Selection:
    """The registered selection `name`; a ConfigError naming `flag` otherwise."""
    from nas_recon.errors import ConfigError

    if name not in SELECTIONS:
        raise ConfigError(f"{flag}: unknown '{name}', expected {', '.join(SELECTIONS)}")
    return SELECTIONS[name]


def retrained(name: object) -> bool:
    """Whether a genotype's recorded selection (genotype.extra['select']) chose it by retrained quality."""
    return isinstance(name, str) and name in SELECTIONS and SELECTIONS[name].retrains


def selections_help() -> str:
    """The --select help, from the registry."""
    return "derivation: " + "; ".join(f"{s.name} = {s.help}" for s in SELECTIONS.values())


register_selection(Selection("alpha", "the paper's rule on softmax weights (default)"))
register_selection(Selection("perturb", "DARTS-PT: each op ranked by how much the trained supernet's train_alpha "
                             "loss rises without it", perturbation=True))
register_selection(Selection("halving", "DARTS proposes, successive halving over short retrainings of a pool inside "
                             "the FLOPs band decides (needs --flops-target)", retrains=True,
                             writes="darts_genotype.json"))
