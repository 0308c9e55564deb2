"""The genotype: a derived cell and its network's macro choices, saved as versioned JSON that rebuilds the network
without search code.

Version 2 adds `backbone` ("dag": the paper's cell; "chain": residual cells of chained ops), `shared` (one body
for every cascade) and `dc` ("hard" or "soft" data consistency). A genotype that needs none of them (the paper's
spaces) is still written as version 1, so genotype files and the checkpoints that embed them stay as before;
version 1 files are read as dag, not shared, hard.
"""

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
VERSION = 2
VERSIONS = (1, 2)


@dataclass(frozen=True)
class Node:
    """dag: node = ops[0](state[inputs[0]]) + ops[1](state[inputs[1]]); 0 = C_{l-2}, 1 = C_{l-1}, 2+k = node k.
    chain: node k = ops[0](state k), inputs = (k,); state 0 is the cell's input."""

    inputs: tuple[int, ...]
    ops: tuple[str, ...]


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
    backbone: str = "dag"
    shared: bool = False
    dc: str = "hard"

    @property
    def version(self) -> int:
        """1 when the paper's format holds it, else 2."""
        return 1 if (self.backbone, self.shared, self.dc) == ("dag", False, "hard") else 2

    @property
    def chain(self) -> bool:
        """True for a chain backbone (residual cells of chained ops)."""
        return self.backbone == "chain"

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
            "format": FORMAT, "version": self.version, "space": self.space, "channels": self.channels,
            "cells": self.cells, "cascades": self.cascades, "nodes": self.nodes,
            "cell": [{"inputs": list(n.inputs), "ops": list(n.ops)} for n in self.cell],
        }
        if self.version == 2:
            d.update({"backbone": self.backbone, "shared": self.shared, "dc": self.dc})
        if self.bias:
            d["bias"] = True
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    def describe(self) -> str:
        """Compact one-line form of the cell, e.g. `n0=sep_conv_3x3(0)+dil_2_conv_3x3(1) | ...` (dag) or
        `conv_3x3 > sep_conv_3x3` (chain)."""
        if self.chain:
            return " > ".join(n.ops[0] for n in self.cell)
        return " | ".join(
            f"n{i}={n.ops[0]}({n.inputs[0]})+{n.ops[1]}({n.inputs[1]})" for i, n in enumerate(self.cell)
        )

    def macro(self) -> str:
        """The network around the cell, e.g. `9 cascades x 1 cell, 32 channels, shared, soft DC`."""
        text = f"{self.cascades} cascades x {self.cells} cell{'s' if self.cells > 1 else ''}, {self.channels} channels"
        return text + (", shared" if self.shared else "") + (", soft DC" if self.dc == "soft" else "")

    def summary(self) -> str:
        """describe() with the macro choices: what a row or a log line names."""
        return f"{self.macro()}: {self.describe()}"


def genotype_for(space: Any, cell: tuple[Node, ...], extra: dict[str, Any] | None = None, **macro: Any) -> Genotype:
    """A Genotype of `cell` with the backbone sizes (and opt-in bias) of `space`, a SearchSpace, at its supernet's
    point unless `macro` gives other values (cascades, cells, channels, shared, dc)."""
    sizes = {k: macro.get(k, getattr(space, k)) for k in ("channels", "cells", "cascades", "shared", "dc")}
    return Genotype(cell, space.name, sizes["channels"], sizes["cells"], sizes["cascades"], dict(extra or {}),
                    space.bias, space.backbone, sizes["shared"], sizes["dc"])


def chain_cell(ops: tuple[str, ...] | list[str]) -> tuple[Node, ...]:
    """The Node tuple of a chain cell of `ops` (node k reads state k)."""
    return tuple(Node((k,), (op,)) for k, op in enumerate(ops))


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
    version = d.get("version")
    if version not in VERSIONS or isinstance(version, bool):
        raise ConfigError(f"{where}: field 'version' is {version!r}, this nas-recon reads versions "
                          f"{', '.join(map(str, VERSIONS))}")
    sizes = {k: _int(d, k, where) for k in ("channels", "cells", "cascades", "nodes")}
    macro = _macro(d, where) if version == 2 else {"backbone": "dag", "shared": False, "dc": "hard"}
    chain = macro["backbone"] == "chain"
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
        arity = 1 if chain else 2
        if not isinstance(inputs, list) or len(inputs) != arity or not all(
            isinstance(j, int) and not isinstance(j, bool) for j in inputs
        ):
            raise ConfigError(f"{at}: field 'inputs' must be a list of {arity} integer{'s' if arity > 1 else ''}")
        for j in inputs:
            if chain and j != i:
                raise ConfigError(f"{at}: input index {j}, a chain's node {i} reads state {i} (the node before it)")
            if not 0 <= j < i + 2:
                raise ConfigError(f"{at}: input index {j} out of range, node {i} may use 0..{i + 1}")
        if not isinstance(ops, list) or len(ops) != arity or not all(isinstance(o, str) for o in ops):
            raise ConfigError(f"{at}: field 'ops' must be a list of {arity} op name{'s' if arity > 1 else ''}")
        for o in ops:
            if o not in OPS or o == "none":
                known = ", ".join(sorted(k for k in OPS if k != "none"))
                raise ConfigError(f"{at}: unknown op '{o}', expected one of {known}")
        nodes.append(Node(tuple(inputs), tuple(ops)))  # type: ignore[arg-type]
    check_space_ops(space, [o for n in nodes for o in n.ops], where, macro["backbone"])
    bias = d.get("bias", False)
    if not isinstance(bias, bool):
        raise ConfigError(f"{where}: field 'bias' must be true or false, got {bias!r}")
    fixed = {"format", "version", "space", "channels", "cells", "cascades", "nodes", "cell", "bias"}
    if version == 2:
        fixed |= set(macro)
    extra = {k: v for k, v in d.items() if k not in fixed}
    return Genotype(tuple(nodes), space, sizes["channels"], sizes["cells"], sizes["cascades"], extra, bias,
                    macro["backbone"], macro["shared"], macro["dc"])


def _macro(d: dict, where: str) -> dict[str, Any]:
    """Version 2's backbone, shared and dc fields, checked."""
    from nas_recon.space.spaces import BACKBONES, DC_KINDS

    out = {"backbone": d.get("backbone"), "shared": d.get("shared"), "dc": d.get("dc")}
    if out["backbone"] not in BACKBONES:
        raise ConfigError(f"{where}: field 'backbone' must be one of {', '.join(BACKBONES)}, got {out['backbone']!r}")
    if not isinstance(out["shared"], bool):
        raise ConfigError(f"{where}: field 'shared' must be true or false, got {out['shared']!r}")
    if out["dc"] not in DC_KINDS:
        raise ConfigError(f"{where}: field 'dc' must be one of {', '.join(DC_KINDS)}, got {out['dc']!r}")
    return out


def check_space_ops(space: str, ops: list[str], where: str, backbone: str = "dag") -> None:
    """A genotype naming a shipped space may only use that space's ops, on that space's backbone."""
    from nas_recon.space.spaces import load_space, shipped_spaces

    if space in shipped_spaces():
        shipped = load_space(space)
        if shipped.backbone != backbone:
            raise ConfigError(f"{where}: field 'backbone' is '{backbone}', space '{space}' (field 'space') is a "
                              f"'{shipped.backbone}' space")
        allowed = shipped.real_ops
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
