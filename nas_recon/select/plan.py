"""Successive halving as a plan of jobs (pure: no Optuna, no training): which candidate trains to which epoch with
which seed, decided from the scores of the jobs already done.

Rung r trains the survivors of rung r - 1 on to `epochs[r]` (a promoted candidate resumes from its checkpoint at
`epochs[r - 1]`; the recipe's schedule is that of the full `epochs[-1]`), keeping the best 1/eta of them by
validation score; rung 0 trains the whole pool from scratch. The best `finalists` of the last rung are then
retrained from scratch with the other seeds, and the winner is the finalist of best mean score over its seeds.
A job that diverged scores -inf: it is never promoted and never selected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nas_recon.errors import ConfigError
from nas_recon.stats import kendall_tau

DIVERGED = float("-inf")


@dataclass(frozen=True)
class Job:
    """Train candidate `candidate` with seed `seed` up to epoch `epochs` (rung `rung`)."""

    candidate: int
    rung: int
    seed: int
    epochs: int

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.candidate, self.rung, self.seed)

    def params(self) -> dict[str, int]:
        return {"candidate": self.candidate, "rung": self.rung, "seed": self.seed}


@dataclass(frozen=True)
class Plan:
    """The schedule: `pool` candidates, rung budgets `epochs` (ascending), reduction factor `eta`, `seeds` (the
    first trains every rung, the others retrain the best `finalists` of the last rung)."""

    pool: int
    epochs: tuple[int, ...]
    eta: int
    seeds: tuple[int, ...]
    finalists: int = 3

    @property
    def final(self) -> int:
        """How many of the last rung are retrained with the other seeds."""
        return min(self.finalists, self.survivors(self.rungs - 1))

    def survivors(self, rung: int) -> int:
        """How many candidates train in rung `rung`: the pool divided by eta per rung, at least one."""
        return max(1, math.ceil(self.pool / self.eta ** rung))

    @property
    def rungs(self) -> int:
        return len(self.epochs)

    def cost_epochs(self) -> int:
        """Epochs the whole plan trains (no divergence): rung r adds epochs[r] - epochs[r - 1] per survivor; each
        finalist trains epochs[-1] more per extra seed."""
        total, prev = 0, 0
        for r, e in enumerate(self.epochs):
            total += self.survivors(r) * (e - prev)
            prev = e
        return total + self.final * self.epochs[-1] * (len(self.seeds) - 1)

    def next_jobs(self, scores: dict[tuple[int, int, int], float]) -> list[Job] | None:
        """The jobs of the first stage not yet done (some may be running), given the scores of finished jobs;
        [] when everything is done; None while the stage before is unfinished is impossible here: a stage's jobs
        are known once the previous stage is complete, so this returns the earliest incomplete stage's jobs."""
        seed0 = self.seeds[0]
        alive = list(range(self.pool))
        for r in range(self.rungs):
            jobs = [Job(c, r, seed0, self.epochs[r]) for c in alive]
            todo = [j for j in jobs if j.key not in scores]
            if todo:
                return todo
            alive = self.promote(alive, r, scores)
        finals = [Job(c, self.rungs - 1, s, self.epochs[-1]) for c in alive for s in self.seeds[1:]]
        return [j for j in finals if j.key not in scores]

    def promote(self, alive: list[int], rung: int, scores: dict[tuple[int, int, int], float]) -> list[int]:
        """The best survivors(rung + 1) of `alive` by their rung score (ties: lower candidate index); after the
        last rung, its best `final` (the finalists). Diverged candidates are never promoted."""
        keep = self.final if rung == self.rungs - 1 else self.survivors(rung + 1)
        ranked = sorted((c for c in alive if scores[(c, rung, self.seeds[0])] != DIVERGED),
                        key=lambda c: (-scores[(c, rung, self.seeds[0])], c))
        return ranked[:keep]

    def finalists_of(self, scores: dict[tuple[int, int, int], float]) -> list[int]:
        """The finalists (call once the last rung is done)."""
        alive = list(range(self.pool))
        for r in range(self.rungs):
            alive = self.promote(alive, r, scores)
        return alive

    def winner(self, scores: dict[tuple[int, int, int], float]) -> tuple[int, float] | None:
        """The finalist of best mean score over the seeds (ties: lower index), and that mean; None when every
        finalist diverged."""
        r = self.rungs - 1
        means = []
        for c in self.finalists_of(scores):
            vals = [scores[(c, r, s)] for s in self.seeds]
            if DIVERGED not in vals:
                means.append((sum(vals) / len(vals), c))
        if not means:
            return None
        mean, c = max(means, key=lambda t: (t[0], -t[1]))
        return c, mean

    def to_dict(self) -> dict[str, Any]:
        return {"pool": self.pool, "epochs": list(self.epochs), "eta": self.eta, "seeds": list(self.seeds),
                "survivors": [self.survivors(r) for r in range(self.rungs)], "finalists": self.final,
                "cost_epochs": self.cost_epochs()}


def make_plan(pool: int, final_epochs: int, rungs: int, eta: int, seeds: tuple[int, ...], finalists: int = 3) -> Plan:
    """Rung budgets final_epochs / eta^k (rounded up, strictly increasing), checked; errors name the flag."""
    if pool < 2:
        raise ConfigError(f"--pool: expected at least 2 candidates, got {pool}")
    if eta < 2:
        raise ConfigError(f"--eta: expected a reduction factor of at least 2, got {eta}")
    if rungs < 1:
        raise ConfigError(f"--rungs: expected at least 1, got {rungs}")
    if not seeds:
        raise ConfigError("--final-seeds: expected at least 1")
    if finalists < 1:
        raise ConfigError(f"--finalists: expected at least 1, got {finalists}")
    epochs = tuple(max(1, math.ceil(final_epochs / eta ** (rungs - 1 - r))) for r in range(rungs))
    if any(b <= a for a, b in zip(epochs, epochs[1:], strict=False)):
        raise ConfigError(f"--rungs {rungs}: the recipe's {final_epochs} epochs cannot make {rungs} rungs of growing "
                          f"budget at reduction factor {eta} ({', '.join(map(str, epochs))} epochs); use fewer rungs "
                          "or a recipe with more epochs")
    return Plan(pool, epochs, eta, tuple(seeds), finalists)


def rank_correlation(a: list[float], b: list[float]) -> float | None:
    """Kendall's tau-b of a rung's paired scores; None below 3 pairs or when it is undefined."""
    return kendall_tau(a, b, min_pairs=3)
