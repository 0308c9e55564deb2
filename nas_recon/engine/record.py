"""A run folder's record: one run.json writer and one resume rule for every kind of run (search, retrain, pretrain)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas_recon import __version__
from nas_recon.data.identity import describe_data, same_data
from nas_recon.errors import ConfigError
from nas_recon.io import atomic_write_text
from nas_recon.outputs import read_run_record

if TYPE_CHECKING:  # Lightning's import is heavy: only a run that trains pays it (not --help)
    from nas_recon.engine.checkpoint_io import RunCheckpointIO


def check_unchanged(source: Path, saved: dict[str, Any], now: dict[str, Any], keys: Sequence[str],
                    defaults: dict[str, Any] | None = None, kind: str = "run") -> None:
    """--resume: refuse when a setting that shaped the earlier epochs changed (the record would misdescribe them).

    `saved` is what `source` recorded, `now` this call's settings; a key an older record lacks had its value in
    `defaults`. The data is compared by content (./data, an absolute path and a symlink to it are the same data);
    a changed mapping names its changed sub-key.
    """
    defaults = defaults or {}
    for key in keys:
        old, new = saved.get(key, defaults.get(key)), now.get(key, defaults.get(key))
        if key == "data":
            if not same_data(old, new):
                raise ConfigError(f"--resume: the data is not what this {kind} trained on (was {describe_data(old)}, "
                                  f"now {describe_data(new)}; from {source}); resume on the same data or use another "
                                  "--out")
            continue
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            sub = next(k for k in sorted({*old, *new}) if old.get(k) != new.get(k))
            key, old, new = f"{key}.{sub}", old.get(sub), new.get(sub)
        raise ConfigError(f"--resume: setting '{key}' was {old!r}, now {new!r} (from {source}); resume with the same "
                          "settings or use another --out")


@dataclass(frozen=True)
class RunRecord:
    """A kind of run folder's run.json: one writer, one resume check, one rule for a folder already in use.

    `fixed`: the settings a resume may not change; `defaults`: what a record written before a key existed meant;
    `noun` and `resumed`: how the messages name the run ("a retrain run is already there", "this run trained on").
    Its checkpoint: OUT/last.pt in the one format (engine.checkpoint_io), the task's trained modules under `prefix`;
    `legacy`: the files an earlier nas-recon wrote instead, still resumed.
    """

    kind: str
    fixed: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    noun: str = "run"
    resumed: str = "run"
    prefix: str = "net."
    legacy: tuple[str, ...] = ()

    def file(self, out: str | Path) -> Path:
        return Path(out) / "run.json"

    def checkpoint(self, out: str | Path) -> Path:
        """Where this kind of run keeps its last state (rewritten at every epoch's end)."""
        return Path(out) / "last.pt"

    def resumable(self, out: str | Path) -> Path | None:
        """The checkpoint a resume continues from: OUT/last.pt, or an earlier nas-recon's file; None."""
        return next((p for p in (self.checkpoint(out), *(Path(out) / n for n in self.legacy)) if p.is_file()), None)

    def checkpoint_io(self) -> RunCheckpointIO:
        """The one checkpoint format, for this kind's Trainer."""
        from nas_recon.engine.checkpoint_io import RunCheckpointIO

        return RunCheckpointIO(self.kind, self.prefix)

    def check_new(self, out: str | Path, resume: bool, marker: Path | None = None) -> None:
        """Refuse to start over the run in `out` (its `marker` file, by default a checkpoint) unless resuming it
        (nothing written)."""
        marker = marker or self.resumable(out)
        if marker is not None and marker.exists() and not resume:
            raise ConfigError(f"{out}: a {self.noun} run is already there (use --resume, or another --out)")

    def read(self, out: str | Path) -> dict[str, Any]:
        """The folder's run.json (one line naming the file when it is unreadable or of another kind)."""
        return read_run_record(self.file(out), self.kind)

    def check_resume(self, out: str | Path, now: dict[str, Any], saved: dict[str, Any] | None = None) -> None:
        """--resume: refuse when a fixed setting changed (`saved`: the record's settings, default its run.json)."""
        saved = self.read(out) if saved is None else saved
        check_unchanged(self.file(out), saved, now, self.fixed, dict(self.defaults), self.resumed)

    def write(self, out: str | Path, meta: dict[str, Any]) -> None:
        """run.json atomically: the kind, the package version, then `meta`."""
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file(out), json.dumps({"kind": self.kind, "version": __version__, **meta}, indent=1))
