"""The genotype: a derived cell, saved as versioned JSON that rebuilds the network without search code."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas_recon.errors import ConfigError, NasReconError
from nas_recon.io import atomic_write_text
from nas_recon.space.ops import OPS
from nas_recon.space.spaces import LIMITS

FORMAT = "nas-recon-genotype"
VERSION = 1


@dataclass(frozen=True)
class Node:
    """node = ops[0](state[inputs[0]]) + ops[1](state[inputs[1]]); 0 = C_{l-2}, 1 = C_{l-1}, 2+k = node k."""

    inputs: tuple[int, int]
    ops: tuple[str, str]


@dataclass(frozen=True)
class Genotype:
    """A discrete cell and the backbone sizes; `extra` keeps alphas, settings and provenance."""

    cell: tuple[Node, ...]
    space: str = "paper_a"
    channels: int = 32
    cells: int = 3
    cascades: int = 3
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    bias: bool = False  # opt-in `cell_bias` (SPEC's contract is bias-free); in the JSON only when true

    @property
    def nodes(self) -> int:
        """Number of internal nodes."""
        return len(self.cell)

    def same_cell(self, other: Genotype) -> bool:
        """True when both describe the same discrete cell."""
        return self.cell == other.cell

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract (extra keys after the fixed ones)."""
        d: dict[str, Any] = {
            "format": FORMAT, "version": VERSION, "space": self.space, "channels": self.channels,
            "cells": self.cells, "cascades": self.cascades, "nodes": self.nodes,
            "cell": [{"inputs": list(n.inputs), "ops": list(n.ops)} for n in self.cell],
        }
        if self.bias:
            d["bias"] = True
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    def describe(self) -> str:
        """Compact one-line form, e.g. `n0=sep_conv_3x3(0)+dil_2_conv_3x3(1) | ...`."""
        return " | ".join(
            f"n{i}={n.ops[0]}({n.inputs[0]})+{n.ops[1]}({n.inputs[1]})" for i, n in enumerate(self.cell)
        )


def genotype_for(space: Any, cell: tuple[Node, ...], extra: dict[str, Any] | None = None) -> Genotype:
    """A Genotype of `cell` with the backbone sizes (and opt-in bias) of `space`, a SearchSpace."""
    return Genotype(cell, space.name, space.channels, space.cells, space.cascades, dict(extra or {}), space.bias)


def _int(d: dict, key: str, where: str) -> int:
    val = d.get(key)
    if not isinstance(val, int) or isinstance(val, bool) or not 1 <= val <= LIMITS[key]:
        raise ConfigError(f"{where}: field '{key}' must be an integer in [1, {LIMITS[key]}], got {val!r}")
    return val


def genotype_from_dict(d: Any, where: str = "genotype") -> Genotype:
    """Validate a genotype dict; every error names the field."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a JSON object")
    if d.get("format") != FORMAT:
        raise ConfigError(f"{where}: field 'format' is {d.get('format')!r}, expected '{FORMAT}'")
    if d.get("version") != VERSION:
        raise ConfigError(f"{where}: field 'version' is {d.get('version')!r}, this nas-recon reads version {VERSION}")
    sizes = {k: _int(d, k, where) for k in ("channels", "cells", "cascades", "nodes")}
    space = d.get("space", "custom")
    if not isinstance(space, str):
        raise ConfigError(f"{where}: field 'space' must be a string")
    cell = d.get("cell")
    if not isinstance(cell, list):
        raise ConfigError(f"{where}: field 'cell' must be a list of nodes")
    if len(cell) != sizes["nodes"]:
        raise ConfigError(f"{where}: field 'cell' has {len(cell)} nodes, field 'nodes' says {sizes['nodes']}")
    nodes = []
    for i, n in enumerate(cell):
        at = f"{where}: cell[{i}]"
        if not isinstance(n, dict) or set(n) - {"inputs", "ops"}:
            raise ConfigError(f"{at}: expected an object with 'inputs' and 'ops'")
        inputs, ops = n.get("inputs"), n.get("ops")
        if not isinstance(inputs, list) or len(inputs) != 2 or not all(
            isinstance(j, int) and not isinstance(j, bool) for j in inputs
        ):
            raise ConfigError(f"{at}: field 'inputs' must be a list of 2 integers")
        for j in inputs:
            if not 0 <= j < i + 2:
                raise ConfigError(f"{at}: input index {j} out of range, node {i} may use 0..{i + 1}")
        if not isinstance(ops, list) or len(ops) != 2 or not all(isinstance(o, str) for o in ops):
            raise ConfigError(f"{at}: field 'ops' must be a list of 2 op names")
        for o in ops:
            if o not in OPS or o == "none":
                known = ", ".join(sorted(k for k in OPS if k != "none"))
                raise ConfigError(f"{at}: unknown op '{o}', expected one of {known}")
        nodes.append(Node(tuple(inputs), tuple(ops)))  # type: ignore[arg-type]
    check_space_ops(space, [o for n in nodes for o in n.ops], where)
    bias = d.get("bias", False)
    if not isinstance(bias, bool):
        raise ConfigError(f"{where}: field 'bias' must be true or false, got {bias!r}")
    fixed = {"format", "version", "space", "channels", "cells", "cascades", "nodes", "cell", "bias"}
    extra = {k: v for k, v in d.items() if k not in fixed}
    return Genotype(tuple(nodes), space, sizes["channels"], sizes["cells"], sizes["cascades"], extra, bias)


def check_space_ops(space: str, ops: list[str], where: str) -> None:
    """A genotype naming a shipped space may only use that space's ops."""
    from nas_recon.space.spaces import load_space, shipped_spaces

    if space in shipped_spaces():
        allowed = load_space(space).real_ops
        for o in ops:
            if o not in allowed:
                raise ConfigError(f"{where}: op '{o}' is not in space '{space}' (field 'space'), "
                                  f"expected one of {', '.join(allowed)}")


def load_genotype(path: str | Path) -> Genotype:
    """Read and validate a genotype JSON file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: genotype file not found")
    try:
        data = json.loads(path.read_text(), object_pairs_hook=_unique_keys)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from e
    except _DuplicateKey as e:
        raise ConfigError(f"{path}: key '{e}' appears twice in one object (which one counts would be a guess)") \
            from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a genotype") from None
    return genotype_from_dict(data, str(path))


class _DuplicateKey(Exception):
    """A JSON object with a key given twice."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object_pairs_hook: refuse duplicate keys (json keeps the last one silently)."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def save_genotype(genotype: Genotype, path: str | Path) -> None:
    """Write the genotype JSON atomically."""
    try:
        text = json.dumps(genotype.to_dict(), indent=1, allow_nan=False) + "\n"
    except ValueError:  # NaN/Inf literals are not JSON: no command could read the file back
        raise NasReconError(f"{path}: refusing to write a genotype with non-finite values") from None
    atomic_write_text(Path(path), text)
