"""Cost-aware search: per-op cost tables (conv MACs or measured latency) and the expected-cost penalty."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from nas_recon.cost import module_macs, timed_ms
from nas_recon.device import place
from nas_recon.errors import ConfigError
from nas_recon.io import atomic_write_text
from nas_recon.space.ops import build_op
from nas_recon.space.spaces import SearchSpace

TABLE = "op_costs.json"


def measure_op_costs(space: SearchSpace, kind: str, side: int, batch: int, device: torch.device) -> dict[str, float]:
    """Cost of each op of `space` on a batch x channels x side x side input: conv MACs (thop) or median ms."""
    c = space.channels
    out: dict[str, float] = {}
    for name in space.real_ops:
        op = build_op(name, c)
        if kind == "flops":
            out[name] = float(module_macs(op, (torch.zeros(batch, c, side, side),)))
        else:
            op = place(op, device).eval()
            x = torch.randn(batch, c, side, side, device=device)
            out[name] = timed_ms(lambda op=op, x=x: op(x), device, repeats=10, warmup=3)
    out["none"] = 0.0  # the zero op costs nothing in a derived cell
    return out


def op_cost_table(run_dir: Path, space: SearchSpace, kind: str, side: int, batch: int,
                  device: torch.device) -> dict[str, float]:
    """The run folder's cached table (so a resumed search penalises exactly as before), else a fresh one."""
    key = {"kind": kind, "space": space.name, "channels": space.channels, "side": side, "batch": batch,
           "device": device.type}
    path = run_dir / TABLE
    if path.exists():
        try:
            saved = json.loads(path.read_text(), parse_constant=lambda c: float("nan"))
            if saved.get("key") == key and set(saved["costs"]) == {*space.real_ops, "none"}:
                costs = {k: float(v) for k, v in saved["costs"].items()}
                bad = next((k for k, v in costs.items() if not math.isfinite(v) or v < 0
                            or (v == 0 and k not in ("none", "skip_connect"))), None)
                if bad is not None:
                    raise ConfigError(f"{path}: op '{bad}' costs {costs[bad]!r}, expected a finite cost > 0 (0 "
                                      "only for none and skip_connect); a damaged table would change the search's "
                                      "genotype: delete it to measure again, or use another --out")
                return costs
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(f"{path}: unreadable op cost table; delete it to measure again") from None
        raise ConfigError(f"{path}: measured for {saved.get('key')}, this search needs {key}; use another --out")
    costs = measure_op_costs(space, kind, side, batch, device)
    atomic_write_text(path, json.dumps({"key": key, "costs": costs}, indent=1))
    return costs


class ExpectedCost:
    """Mean over cell edges of the op cost expected under the edge's softmax, relative to the dearest op.

    0 when every edge is sure of a free op (skip, none), 1 when every edge is sure of the dearest op;
    differentiable in the architecture parameters (the penalty of FBNet / ProxylessNAS-style search).
    A plain object, not a module, so that the alphas never join the weight optimiser's parameters.
    """

    def __init__(self, alphas: list[torch.Tensor], op_names: list[str], costs: dict[str, float]) -> None:
        self.alphas = alphas
        top = max(costs.values()) or 1.0
        self.cost = torch.tensor([costs[n] / top for n in [*op_names, "none"]])

    def __call__(self) -> torch.Tensor:
        total = 0.0
        for a in self.alphas:
            p = torch.softmax(a, 0)
            total = total + (p * self.cost[: len(p)].to(p.device, p.dtype)).sum()
        return total / len(self.alphas)


def describe(costs: dict[str, Any], kind: str) -> dict[str, float]:
    """Rounded table for the genotype's record."""
    return {k: round(float(v), 4 if kind == "latency" else 0) for k, v in costs.items()}
