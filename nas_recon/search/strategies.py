"""Search strategies, registered by name: what each one asks of the supernet, its training step and its derivation.

A strategy is data (no NNI import here, so the CLI can list the choices cheaply); nas_recon.search.supernet builds
the NNI strategy it names and nas_recon.search.run trains by its traits. Adding one: register a Strategy (and, for
a new NNI strategy kind, one branch in supernet.make_strategy).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Strategy:
    """A one-shot strategy's traits."""

    name: str
    help: str
    nni: str  # which NNI strategy drives it: "darts" (DARTS), "gumbel" (GumbelDARTS) or "random" (RandomOneShot)
    bilevel: bool = True  # alternates weight and architecture steps (random one-shot: weights only)
    partial: bool = False  # PC-DARTS: ops on a fraction of the channels, edge normalisation
    one_op: bool = False  # GDAS: a hard (straight-through) Gumbel sample of one op per edge
    unrolled: bool = False  # second order: the architecture step through a virtual weight step
    perturb: bool = True  # DARTS-PT's perturbation scores apply (its supernet mixes every op)
    chain: bool = True  # works on chain spaces (LayerChoice slots)


STRATEGIES: dict[str, Strategy] = {}


def register_strategy(s: Strategy) -> Strategy:
    """Add a strategy under its name."""
    if s.name in STRATEGIES:
        raise ValueError(f"strategy '{s.name}' is already registered")
    STRATEGIES[s.name] = s
    return s


def strategy(name: str) -> Strategy:
    """The registered strategy `name`."""
    from nas_recon.errors import ConfigError

    if name not in STRATEGIES:
        raise ConfigError(f"--strategy: unknown '{name}', expected {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


register_strategy(Strategy("darts", "first-order DARTS (default)", "darts"))
register_strategy(Strategy("darts2", "second-order (unrolled) DARTS", "darts", unrolled=True))
register_strategy(Strategy("gdas", "Gumbel-softmax sampling of one op per edge (straight-through), temperature "
                           "--tau-max -> --tau-min", "gumbel", one_op=True, perturb=False))
register_strategy(Strategy("pcdarts", "partial channels (1/4) and edge normalisation", "darts", partial=True,
                           chain=False))
register_strategy(Strategy("random", "random one-shot", "random", bilevel=False, perturb=False))
