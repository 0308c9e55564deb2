"""Search spaces as TOML data files (search_spaces/*.toml), validated with key-naming errors.

A space has a backbone (`dag`: the paper's cell of nodes with two inputs each; `chain`: residual cells of chained
ops, DC-CNN's residual block being the chain of two dense 3x3 convs), candidate ops and the network's sizes. A
macro space gives some sizes a list of choices (`cascades = [2, 3, 4]`, `channels = {min = 16, max = 64}`,
`shared = [false, true]`, `dc = ["hard", "soft"]`); its `[supernet]` table names the point the DARTS supernet is
trained at, and its `[handcrafted.NAME]` tables the handcrafted networks that are points of the space.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from nas_recon.errors import ConfigError
from nas_recon.paths import load_shipped_toml, shipped_dir
from nas_recon.space.ops import OPS

INT_KEYS = ("nodes", "cells", "cascades", "channels")
LIMITS = {"channels": 1024, "cells": 64, "cascades": 64, "nodes": 16}  # sane upper bounds, far above the paper's
MACRO_KEYS = ("cascades", "cells", "channels", "shared", "dc")  # the keys that may hold a list of choices
BACKBONES = ("dag", "chain")
DC_KINDS = ("hard", "soft")  # hard: measured lines replace the predicted ones; soft: a learnt weight (MoDL-style)
MAX_CHOICES = 4096  # entries of one list key (a {min, max} range counts every integer)


@dataclass(frozen=True)
class SearchSpace:
    """Candidate ops, the backbone and the network's sizes; a macro space's list keys in `choices`.

    The scalar fields (cascades, cells, channels, shared, dc) are the point the supernet is built at; `choices`
    maps each list key to its values (absent: the scalar is the only choice).
    """

    name: str
    ops: tuple[str, ...]
    nodes: int = 3
    cells: int = 3
    cascades: int = 3
    channels: int = 32
    bias: bool = False  # opt-in `cell_bias`: every conv of the network gets a bias (SPEC's contract: none)
    backbone: str = "dag"
    shared: bool = False  # one body for every cascade (MoDL) or one per cascade (DC-CNN, the paper)
    dc: str = "hard"
    choices: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    handcrafted: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = field(default=(), compare=False)

    @property
    def real_ops(self) -> tuple[str, ...]:
        """Candidate ops without `none` (which the supernet models as NNI's implicit zero)."""
        return tuple(o for o in self.ops if o != "none")

    @property
    def is_macro(self) -> bool:
        """True when some size holds a list of choices."""
        return bool(self.choices)

    def values(self, key: str) -> tuple[Any, ...]:
        """The choices of a macro key (its one value when the file gives a scalar)."""
        return dict(self.choices).get(key, (getattr(self, key),))

    def points(self) -> dict[str, dict[str, Any]]:
        """The handcrafted networks that are points of this space: name -> their keys (ops, macro values)."""
        return {name: dict(keys) for name, keys in self.handcrafted}


def shipped_spaces() -> list[str]:
    """Names of the search spaces shipped in search_spaces/."""
    return sorted(p.stem for p in shipped_dir("search_spaces").glob("*.toml"))


def load_space(name_or_path: str) -> SearchSpace:
    """Load a shipped space by name (`paper_a`) or a TOML file by path."""
    data, path = load_shipped_toml(name_or_path, "search_spaces", "--space", "space")
    space = space_from_dict(data, str(path), default_name=path.stem)
    shipped = shipped_dir("search_spaces") / f"{space.name}.toml"
    if shipped.is_file() and path.resolve() != shipped.resolve():
        base = load_space(space.name)
        extra = sorted(set(space.ops) - set(base.ops))
        if extra:  # its genotypes would name the shipped space, whose ops they would fail against
            raise ConfigError(f"{path}: key 'name': '{space.name}' is a shipped space, which has no op '{extra[0]}'; "
                              "give this space a name of its own (a variant of a shipped space may change its sizes, "
                              "not add ops)")
        if space.backbone != base.backbone:
            raise ConfigError(f"{path}: key 'backbone': '{space.name}' is a shipped space with backbone "
                              f"'{base.backbone}'; give this space a name of its own")
    return space


def _int_choice(val: Any, key: str, where: str) -> int:
    if not isinstance(val, int) or isinstance(val, bool) or not 1 <= val <= LIMITS[key]:
        raise ConfigError(f"{where}: key '{key}' must be an integer in [1, {LIMITS[key]}], got {val!r}")
    return val


def _choice(val: Any, key: str, where: str) -> Any:
    """One value of a macro key, checked."""
    if key in INT_KEYS:
        return _int_choice(val, key, where)
    if key == "shared":
        if not isinstance(val, bool):
            raise ConfigError(f"{where}: key 'shared' must be true or false, got {val!r}")
        return val
    if val not in DC_KINDS:
        raise ConfigError(f"{where}: key 'dc' must be one of {', '.join(DC_KINDS)}, got {val!r}")
    return val


def _choices(raw: Any, key: str, where: str) -> tuple[Any, ...]:
    """The values of a macro key: a scalar, a list, or (integer keys) a {min, max[, step]} table."""
    if isinstance(raw, dict) and key in INT_KEYS:
        unknown = sorted(set(raw) - {"min", "max", "step"})
        if unknown or "min" not in raw or "max" not in raw:
            raise ConfigError(f"{where}: key '{key}': a range is a table {{min = A, max = B}} (optional step), got "
                              f"{raw!r}")
        lo, hi = _int_choice(raw["min"], key, where), _int_choice(raw["max"], key, where)
        step = raw.get("step", 1)
        if not isinstance(step, int) or isinstance(step, bool) or step < 1:
            raise ConfigError(f"{where}: key '{key}': step must be a positive integer, got {step!r}")
        if lo > hi:
            raise ConfigError(f"{where}: key '{key}': min {lo} is above max {hi}")
        raw = list(range(lo, hi + 1, step))
    if not isinstance(raw, list):
        return (_choice(raw, key, where),)
    if not raw:
        raise ConfigError(f"{where}: key '{key}' is an empty list; give at least one choice")
    if len(raw) > MAX_CHOICES:
        raise ConfigError(f"{where}: key '{key}' has {len(raw)} choices, at most {MAX_CHOICES}")
    vals = tuple(_choice(v, key, where) for v in raw)
    if len(set(vals)) != len(vals):
        raise ConfigError(f"{where}: key '{key}' lists a choice twice")
    return vals


def space_from_dict(data: dict, where: str, default_name: str = "custom") -> SearchSpace:
    """Validate a space dict; errors name the key."""
    allowed = {"name", "ops", "bias", "backbone", "supernet", "handcrafted", "shared", "dc", *INT_KEYS}
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
    backbone = data.get("backbone", "dag")
    if backbone not in BACKBONES:
        raise ConfigError(f"{where}: key 'backbone' must be one of {', '.join(BACKBONES)}, got {backbone!r}")
    bias = data.get("bias", False)
    if not isinstance(bias, bool):
        raise ConfigError(f"{where}: key 'bias' must be true or false, got {bias!r}")
    nodes = _int_choice(data.get("nodes", SearchSpace.nodes), "nodes", where)
    defaults = {"cascades": SearchSpace.cascades, "cells": SearchSpace.cells, "channels": SearchSpace.channels,
                "shared": SearchSpace.shared, "dc": SearchSpace.dc}
    values = {k: _choices(data.get(k, defaults[k]), k, where) for k in MACRO_KEYS}
    lists = {k: v for k, v in values.items() if isinstance(data.get(k), (list, dict))}
    if lists and backbone != "chain":
        raise ConfigError(f"{where}: key '{next(iter(lists))}' holds a list; macro choices need backbone = \"chain\"")
    anchor = _anchor(data.get("supernet"), values, lists, where)
    space = SearchSpace(name=name, ops=tuple(ops), nodes=nodes, bias=bias, backbone=backbone,
                        choices=tuple(lists.items()), **anchor)
    return replace(space, handcrafted=_handcrafted(data.get("handcrafted"), space, where))


def _anchor(raw: Any, values: dict[str, tuple], lists: dict[str, tuple], where: str) -> dict[str, Any]:
    """The supernet's point: the [supernet] table's values (each one of the key's choices), else the first choice."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: key 'supernet' must be a table of {', '.join(MACRO_KEYS)}")
    for key in raw:
        if key not in MACRO_KEYS:
            raise ConfigError(f"{where}: key 'supernet.{key}' is unknown, expected {', '.join(MACRO_KEYS)}")
        if key not in lists:
            raise ConfigError(f"{where}: key 'supernet.{key}': '{key}' is not a list of choices")
        if raw[key] not in lists[key]:
            raise ConfigError(f"{where}: key 'supernet.{key}' is {raw[key]!r}, not one of the choices of '{key}'")
    return {k: raw.get(k, v[0]) for k, v in values.items()}


def _handcrafted(raw: Any, space: SearchSpace, where: str) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    """[handcrafted.NAME] tables: a chain cell's ops and macro values, each within the space; channels optional
    (free: set to a FLOPs target)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict) or space.backbone != "chain":
        raise ConfigError(f"{where}: key 'handcrafted' must be tables [handcrafted.NAME] of a chain space")
    out = []
    for name, keys in raw.items():
        at = f"{where}: key 'handcrafted.{name}"
        if not isinstance(keys, dict):
            raise ConfigError(f"{at}' must be a table")
        unknown = sorted(set(keys) - {"ops", *MACRO_KEYS})
        if unknown:
            raise ConfigError(f"{at}.{unknown[0]}' is unknown, expected ops, {', '.join(MACRO_KEYS)}")
        ops = keys.get("ops")
        if not isinstance(ops, list) or len(ops) != space.nodes or any(o not in space.real_ops for o in ops):
            raise ConfigError(f"{at}.ops' must list {space.nodes} ops of the space ({', '.join(space.real_ops)}), "
                              f"got {ops!r}")
        point: dict[str, Any] = {"ops": tuple(ops)}
        for key in MACRO_KEYS:
            if key in keys:
                if keys[key] not in space.values(key):
                    raise ConfigError(f"{at}.{key}' is {keys[key]!r}, not one of the space's choices of '{key}'")
                point[key] = keys[key]
            elif key != "channels":
                point[key] = getattr(space, key) if len(space.values(key)) == 1 else None
                if point[key] is None:
                    raise ConfigError(f"{at}' must give '{key}' (the space has several choices)")
        out.append((name, tuple(point.items())))
    return tuple(out)
