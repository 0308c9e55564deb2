"""One job of the selection: a retrain run of a candidate (its own folder, checkpoint and record) trained up to a
rung's epoch and scored on the validation split.

A candidate's seed trains in one folder, TRIALS/cNNN-sS: rung r resumes it from the checkpoint rung r - 1 left and
trains on to the rung's epoch under the full recipe's schedule; it validates only then, on every validation slice
at every acceleration, and that mean PSNR is the job's score. The test split is never read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nas_recon.errors import ConfigError
from nas_recon.select.plan import Job
from nas_recon.train.recipe import Recipe, with_overrides
from nas_recon.train.retrain import RetrainConfig, RetrainProgress, run_retrain

SSDU_SCORE = "minus the held-out k-space loss on val (SSDU)"  # what a trial's score is under --supervision ssdu


@dataclass(frozen=True)
class TrialSetup:
    """What every job of one selection shares."""

    data: str
    sel_dir: Path
    recipe: Recipe  # the trials' recipe: its epochs are the last rung's
    size: int
    device: str
    precision: str = "32"
    maps_dir: str | None = None
    coil_estimator: str = "auto"

    def folder(self, candidate: int, seed: int) -> Path:
        return self.sel_dir / "trials" / f"c{candidate:03d}-s{seed}"

    def genotype_file(self, candidate: int) -> Path:
        return self.sel_dir / "pool" / f"c{candidate:03d}.json"


def supervision_of(cfg: Any) -> dict[str, Any]:
    """A search's supervision settings as recipe overrides ({} when fully supervised)."""
    if cfg.supervision == "full":
        return {}
    return {"supervision": cfg.supervision, "ssdu_rho": cfg.ssdu_rho, "ssdu_selection": cfg.ssdu_selection}


def trial_recipe(r: Recipe, score_slices: int = 0, supervision: dict[str, Any] | None = None) -> Recipe:
    """The recipe a trial trains under: the selection's, validating on whole validation slices (`score_slices` of
    them evenly spaced, 0 = all); under the search's supervision (SSDU: scored by the held-out k-space loss)."""
    r = replace(r, val_crop=0, val_max_slices=score_slices)
    return with_overrides(r, supervision, "--supervision") if supervision else r


def score_text(score: float, ssdu: bool) -> str:
    """A trial's score in words: its validation PSNR, or under SSDU its held-out k-space loss."""
    return f"val held-out loss {-score:.4f}" if ssdu else f"val PSNR {score:.2f} dB"


def epoch_score(history: list[dict[str, Any]], epoch: int) -> float | None:
    """The validation score recorded at `epoch`, higher is better: the PSNR, or under SSDU minus the held-out
    k-space loss (None: not validated then)."""
    for row in history:
        if int(row["epoch"]) != epoch:
            continue
        if row.get("val_psnr") not in ("", None):
            return float(row["val_psnr"])
        if row.get("val_loss") not in ("", None):
            return -float(row["val_loss"])
    return None


def done_epochs(folder: Path) -> tuple[int, list[dict[str, Any]]]:
    """The epochs a trial folder's last.pt holds and its history (0, [] when it has none)."""
    from nas_recon.engine.checkpoint import read_checkpoint

    last = folder / "last.pt"
    if not last.is_file():
        return 0, []
    ck = read_checkpoint(last)
    return int(ck.get("epoch", 0)), list(ck.get("history", []))


def run_job(setup: TrialSetup, job: Job, progress: RetrainProgress | None = None) -> float:
    """Train `job`'s candidate up to its epoch (resuming the candidate's folder) and return its validation score."""
    folder = setup.folder(job.candidate, job.seed)
    done, history = done_epochs(folder)
    if done < job.epochs:
        cfg = RetrainConfig(setup.data, str(folder), setup.recipe, genotype=str(setup.genotype_file(job.candidate)),
                            seed=job.seed, device=setup.device, size=setup.size, precision=setup.precision,
                            maps_dir=setup.maps_dir, coil_estimator=setup.coil_estimator, stop_epoch=job.epochs,
                            validate="end")
        history = run_retrain(cfg, resume=(folder / "run.json").is_file(), progress=progress)["history"]
    score = epoch_score(history, job.epochs)
    if score is None:
        raise ConfigError(f"{folder}: holds {done} epochs but no validation at epoch {job.epochs} (a folder of "
                          "another selection?); use another --out")
    return score
