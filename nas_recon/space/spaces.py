"""Search spaces as TOML data files (search_spaces/*.toml), validated with key-naming errors."""

from __future__ import annotations

from dataclasses import dataclass

from nas_recon.errors import ConfigError
from nas_recon.paths import load_shipped_toml, shipped_dir
from nas_recon.space.ops import OPS

INT_KEYS = ("nodes", "cells", "cascades", "channels")
LIMITS = {"channels": 1024, "cells": 64, "cascades": 64, "nodes": 16}  # sane upper bounds, far above the paper's


@dataclass(frozen=True)
class SearchSpace:
    """Candidate ops and the backbone's sizes."""

    name: str
    ops: tuple[str, ...]
    nodes: int = 3
    cells: int = 3
    cascades: int = 3
    channels: int = 32
    bias: bool = False  # opt-in `cell_bias`: every conv of the network gets a bias (SPEC's contract: none)

    @property
    def real_ops(self) -> tuple[str, ...]:
        """Candidate ops without `none` (which the supernet models as NNI's implicit zero)."""
        return tuple(o for o in self.ops if o != "none")


def shipped_spaces() -> list[str]:
    """Names of the search spaces shipped in search_spaces/."""
    return sorted(p.stem for p in shipped_dir("search_spaces").glob("*.toml"))


def load_space(name_or_path: str) -> SearchSpace:
    """Load a shipped space by name (`paper_a`) or a TOML file by path."""
    data, path = load_shipped_toml(name_or_path, "search_spaces", "--space", "space")
    space = space_from_dict(data, str(path), default_name=path.stem)
    shipped = shipped_dir("search_spaces") / f"{space.name}.toml"
    if shipped.is_file() and path.resolve() != shipped.resolve():
        extra = sorted(set(space.ops) - set(load_space(space.name).ops))
        if extra:  # its genotypes would name the shipped space, whose ops they would fail against
            raise ConfigError(f"{path}: key 'name': '{space.name}' is a shipped space, which has no op '{extra[0]}'; "
                              "give this space a name of its own (a variant of a shipped space may change its sizes, "
                              "not add ops)")
    return space


def space_from_dict(data: dict, where: str, default_name: str = "custom") -> SearchSpace:
    """Validate a space dict; errors name the key."""
    allowed = {"name", "ops", "bias", *INT_KEYS}
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key '{key}', expected {', '.join(sorted(allowed))}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: key 'name' must be a non-empty string")
    ops = data.get("ops")
    if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
        raise ConfigError(f"{where}: key 'ops' must be a list of op names")
    for o in ops:
        if o not in OPS:
            raise ConfigError(f"{where}: key 'ops': unknown op '{o}', expected one of {', '.join(sorted(OPS))}")
    if len(set(ops)) != len(ops):
        raise ConfigError(f"{where}: key 'ops' lists an op twice")
    if not [o for o in ops if o != "none"]:
        raise ConfigError(f"{where}: key 'ops' needs at least one op other than 'none'")
    ints = {}
    for key in INT_KEYS:
        val = data.get(key, getattr(SearchSpace, key))
        if not isinstance(val, int) or isinstance(val, bool) or not 1 <= val <= LIMITS[key]:
            raise ConfigError(f"{where}: key '{key}' must be an integer in [1, {LIMITS[key]}], got {val!r}")
        ints[key] = val
    bias = data.get("bias", False)
    if not isinstance(bias, bool):
        raise ConfigError(f"{where}: key 'bias' must be true or false, got {bias!r}")
    return SearchSpace(name=name, ops=tuple(ops), bias=bias, **ints)
