"""Small statistics shared by the stages: one definition of the rank correlation the evidence reports."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def kendall_tau(a: Sequence[float], b: Sequence[float], min_pairs: int = 2) -> float | None:
    """Kendall's tau-b of paired values (scipy): +1 when `a` and `b` rank alike; None below `min_pairs` pairs or
    when it is undefined (a constant side)."""
    from scipy.stats import kendalltau

    if len(a) < max(2, min_pairs):
        return None
    tau = float(kendalltau(np.asarray(a, float), np.asarray(b, float)).statistic)
    return None if math.isnan(tau) else tau
