"""The one adapter to Optuna: the study's storage, its queue of jobs, and the worker loop.

The study is the selection's shared state: every job (candidate, rung, seed) of the successive-halving plan is an
Optuna trial, enqueued with its parameters once the jobs before it have scores; workers (processes on this machine or
on others, on one storage) pop enqueued trials in order, train, and report the validation score as the trial's
value. So no job is lost or run twice:
- a trial is popped by one worker only (Optuna's WAITING -> RUNNING transition);
- a job enqueued twice by two workers at once runs once: the later trial finds the earlier one and is recorded as a
  duplicate (pruned) without training;
- a worker that dies leaves a RUNNING trial: on this machine it is failed at once when its process is gone, on a
  relational storage Optuna's heartbeat fails it after the grace period; its job is then enqueued again and resumes
  from the candidate's last checkpoint. A diverged job is failed and final (never promoted or selected).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas_recon.errors import ConfigError, Diverged
from nas_recon.select.plan import DIVERGED, Job, Plan

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import optuna
    from optuna.trial import TrialState

optuna.logging.disable_default_handler()  # library code never prints: trials and workers are recorded instead
optuna.logging.set_verbosity(optuna.logging.ERROR)
logging.getLogger("optuna").setLevel(logging.ERROR)

HEARTBEAT_S = 10  # a relational storage's heartbeat: a RUNNING trial not heard of for GRACE_S seconds is failed
GRACE_S = 60
POLL_S = 2.0  # a worker waiting for the others' jobs looks again this often
JOURNAL = "journal:"  # --storage journal:PATH: Optuna's journal file (a shared file system, no database server)


def worker_id() -> str:
    """This process, as recorded on the trials it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def open_storage(url: str) -> Any:
    """An Optuna storage for `url`: sqlite:///PATH, postgresql://..., mysql://... (with a heartbeat), or
    journal:PATH; a storage that cannot be opened is refused in one line naming --storage."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if url.startswith(JOURNAL):
                path = Path(url[len(JOURNAL):])
                if not path.parent.is_dir():
                    raise ConfigError(f"--storage {url}: folder {path.parent} not found")
                from optuna.storages.journal import JournalFileBackend

                return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
            if url.split(":", 1)[0].split("+", 1)[0] not in ("sqlite", "postgresql", "mysql"):
                raise ConfigError(f"--storage: expected sqlite:///PATH, postgresql://..., mysql://... or "
                                  f"journal:PATH, got {url!r}")
            kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                                                 grace_period=GRACE_S)
            if url.startswith("sqlite"):
                serialise_sqlite(storage.engine)
            return storage
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 - drivers raise many types; each means the storage cannot be used
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise ConfigError(f"--storage: cannot open {redact(url)} ({reason})") from None


def serialise_sqlite(engine: Any) -> None:
    """Make every SQLite transaction take the write lock when it begins (BEGIN IMMEDIATE, SQLAlchemy's recipe for
    pysqlite): Optuna pops an enqueued trial by reading it WAITING and then setting it RUNNING, and pysqlite runs the
    read outside the transaction, so two processes could both pop one trial; serialised, only one can."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite's own BEGIN is deferred and too late: ours comes below

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while the schema was created reconnect with the listeners


def redact(url: str) -> str:
    """A storage URL without its password."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def open_study(storage: Any, name: str, settings: dict[str, Any], wait_s: float = 60.0) -> optuna.Study:
    """Create the study, or join it; a study of that name holding other settings is refused in one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
            study.set_user_attr("settings", settings)
            return study
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=name, storage=storage)
    deadline = time.time() + wait_s
    while "settings" not in study.user_attrs and time.time() < deadline:  # its creator is writing them
        time.sleep(0.5)
    held = study.user_attrs.get("settings")
    if held != settings:
        diff = next((k for k in sorted({*(held or {}), *settings}) if (held or {}).get(k) != settings.get(k)), "?")
        raise ConfigError(f"--resume: the study '{name}' was started with other settings ('{diff}' was "
                          f"{(held or {}).get(diff)!r}, now {settings.get(diff)!r}); resume with the same settings or "
                          "use another --out")
    return study


def job_of(trial: Any) -> tuple[int, int, int] | None:
    """The (candidate, rung, seed) a trial runs (None: a trial that carries no job)."""
    job = trial.user_attrs.get("job")
    return tuple(job) if isinstance(job, list) and len(job) == 3 else None


def is_duplicate(trial: Any) -> bool:
    return bool(trial.user_attrs.get("duplicate_of") is not None or trial.user_attrs.get("empty"))


def scores_of(trials: list[Any]) -> dict[tuple[int, int, int], float]:
    """Every finished job's score: a COMPLETE trial's value, a diverged one's -inf."""
    out: dict[tuple[int, int, int], float] = {}
    for t in trials:
        key = job_of(t)
        if key is None or is_duplicate(t):
            continue
        if t.state == TrialState.COMPLETE:
            out[key] = float(t.value)
        elif t.state == TrialState.FAIL and t.user_attrs.get("diverged"):
            out.setdefault(key, DIVERGED)
    return out


def reap(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials whose worker is gone: on this machine at once (its process no longer exists), on a
    relational storage through Optuna's heartbeat; their jobs are then enqueued again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    host = socket.gethostname()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = str(t.user_attrs.get("worker", ""))
        name, _, pid = who.rpartition(":")
        if name != host or not pid.isdigit() or int(pid) == os.getpid() or alive(int(pid)):
            continue
        try:
            study.tell(t.number, state=TrialState.FAIL)
            failed.append(t.number)
        except (RuntimeError, ValueError):  # another worker failed it first
            pass
    return failed


def alive(pid: int) -> bool:
    """True when a process of that id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def work(study: optuna.Study, plan: Plan, run_job: Callable[[Job], float], on_idle: Callable[[], None] | None = None,
         poll_s: float = POLL_S) -> dict[tuple[int, int, int], float]:
    """Run the plan's jobs on this worker until every job has a score; return the scores.

    Each pass: reap dead workers' trials, enqueue the jobs the plan needs now that no live trial holds, and run the
    oldest enqueued trial (or wait for the other workers' jobs when none is waiting).
    """

    def objective(trial: optuna.trial.Trial) -> float:
        key = job_of(trial)
        if key is None:  # popped nothing enqueued (another worker took the last one first)
            trial.set_user_attr("empty", True)
            raise optuna.TrialPruned()
        c, r, s = key
        trial.set_user_attr("worker", worker_id())
        for name, value in (("candidate", c), ("rung", r), ("seed", s)):
            trial.suggest_int(name, value, value)
        earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and job_of(t) == key
                   and not is_duplicate(t) and (t.state in (TrialState.WAITING, TrialState.RUNNING,
                                                            TrialState.COMPLETE) or t.user_attrs.get("diverged"))]
        if earlier:
            trial.set_user_attr("duplicate_of", earlier[0].number)
            raise optuna.TrialPruned()
        job = Job(c, r, s, int(trial.user_attrs["epochs"]))
        t0 = time.time()
        try:
            score = run_job(job)
        except Diverged as e:
            trial.set_user_attr("diverged", str(e)[:300])
            trial.set_user_attr("seconds", round(time.time() - t0, 1))
            raise
        trial.set_user_attr("seconds", round(time.time() - t0, 1))
        return score

    while True:
        reap(study)
        trials = study.get_trials(deepcopy=False)
        scores = scores_of(trials)
        todo = plan.next_jobs(scores)
        if not todo:
            return scores
        live = {job_of(t) for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)
                and not is_duplicate(t)}
        for j in todo:
            if j.key not in live:
                study.enqueue_trial({}, user_attrs={"job": list(j.key), "epochs": j.epochs})
        if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                study.optimize(objective, n_trials=1, catch=(Diverged,))
        else:
            if on_idle is not None:
                on_idle()
            time.sleep(poll_s)


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial of the study, for trials.csv."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        key = job_of(t)
        rows.append({"trial": t.number, "state": t.state.name.lower(), "candidate": key[0] if key else "",
                     "rung": key[1] if key else "", "seed": key[2] if key else "",
                     "epochs": t.user_attrs.get("epochs", ""),
                     "score": "" if t.value is None else round(float(t.value), 4),
                     "diverged": t.user_attrs.get("diverged", ""), "duplicate_of": t.user_attrs.get("duplicate_of", ""),
                     "seconds": t.user_attrs.get("seconds", ""), "worker": t.user_attrs.get("worker", ""),
                     "retry_of": t.user_attrs.get("retry_of", "")})
    return rows
