"""Continuing a sweep whose driver died: what Tune's snapshot knows, completed by the results store.

Tune snapshots the experiment (trials, searcher, stateful callbacks) every few seconds
at best, so its snapshot can predate the last trials to finish. The results store is
written as each trial finishes, so it is the record of what is done: a trial Tune would
re-run although the store has its outcome is replayed from the store instead (its last
result is handed back to Tune without training), and trials Tune never heard of are
kept in the store as dropped when the resumed sweep is reconciled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tuning_service.core import processes
from tuning_service.core.errors import InputError
from tuning_service.core.job import Job
from tuning_service.core.outcomes import DIVERGED_KEY, EARLY_STOPPED_KEY, ERROR_KEY, REPLAYED_KEY
from tuning_service.core.results import DIVERGED, ERRORED, INFEASIBLE, STOPPED, TRIALS_DIR, TrialSummary
from tuning_service.core.settings import from_record
from tuning_service.core.spec import SweepSpec
from tuning_service.core.timestamps import iso_utc
from tuning_service.raytune.recording import recorded_trial
from tuning_service.store.records import RANKED, STALE_AFTER_S, Store, SweepRow
from tuning_service.store.schema import FINISHED, RUNNING

# Trial statuses in the store that mean "finished: never run this trial again".
_FINISHED_TRIALS = ("completed", STOPPED, INFEASIBLE, DIVERGED, ERRORED)


@dataclass(frozen=True)
class Resume:
    """An interrupted sweep as the runner continues it."""

    sweep_id: str
    sweep_dir: Path
    started_at: str  # the first run's start, ISO 8601 UTC
    previous_s: float  # wall time the interrupted run(s) spent
    finished: dict[str, dict[str, Any]]  # trial id -> the last result to replay
    counts: dict[str, int]  # finished trials by status, for the progress view
    epochs_done: int
    best: tuple[float, dict[str, Any]] | None  # best value so far and its config
    summaries: dict[str, TrialSummary]  # the finished trials as the store recorded them


def check_resumable(row: SweepRow) -> Path:
    """The sweep's Tune experiment folder; InputError saying why the sweep cannot be resumed.

    The caller then takes the folder's driver lock (`driverlock`) and asks
    `check_no_live_driver`, in that order, before touching the folder.
    """
    if row.status == FINISHED:
        raise InputError(
            f"sweep {row.sweep_id} finished already; `tuning-service results {row.sweep_id}` shows it"
        )
    trials_dir = Path(row.sweep_dir or "") / TRIALS_DIR
    if not row.sweep_dir or not (trials_dir / "tuner.pkl").is_file():
        raise InputError(
            f"sweep {row.sweep_id} cannot be resumed: its folder {trials_dir} holds no Ray Tune snapshot "
            "(moved or deleted?)"
        )
    return trials_dir


def check_no_live_driver(row: SweepRow, *, fresh_s: float = STALE_AFTER_S) -> None:
    """InputError when the database says a driver may still run the sweep.

    The driver lock settles it wherever the sweep's folder is shared with working locks;
    this covers the rest. A running sweep's driver on this machine (and pid namespace) is
    alive or provably gone; one elsewhere (another node, a container with the same host name)
    counts as alive until its heartbeat is ``fresh_s`` old.
    """
    if row.status != RUNNING or processes.is_this_process(row.host, row.pid, row.driver):
        return  # this process holds no lock on it (DriverLock refused otherwise): its run ended
    since = (row.driver or {}).get("since") or iso_utc(row.started_at)
    driver = f"pid {row.pid} on {row.host} since {since}"
    alive = processes.state(row.host, row.pid, row.driver)
    if alive == processes.ALIVE:
        raise InputError(
            f"sweep {row.sweep_id} is still being driven by {driver}; one sweep cannot have two drivers: "
            "wait for it to end, or stop it first"
        )
    beat = row.heartbeat_at or row.started_at
    age = (datetime.now(UTC) - beat).total_seconds()
    if alive == processes.UNKNOWN and age < fresh_s:
        after = beat + timedelta(seconds=fresh_s)
        raise InputError(
            f"sweep {row.sweep_id} may still be driven by {driver}: its last heartbeat was {age:.0f} s ago; "
            f"stop that driver, or if it is gone, resume after {after:%Y-%m-%d %H:%M:%S} UTC"
        )


def spec_of(row: SweepRow, *, db: str | None) -> SweepSpec:
    """The sweep's spec as `run` recorded it (the database URL is never recorded: it may hold a password)."""
    return from_record(row.spec, db=db)


def plan_resume(store: Store, row: SweepRow, job: Job) -> Resume:
    """Everything the store knows that the resumed run needs."""
    trials = store.trials([row.sweep_id])
    epochs: dict[str, list[Any]] = {}
    for epoch in store.epochs(row.sweep_id):  # ordered by trial and epoch
        epochs.setdefault(epoch.trial_id, []).append(epoch)
    finished: dict[str, Any] = {}
    counts: dict[str, int] = {}
    summaries: dict[str, Any] = {}
    for trial in trials:
        if trial.status not in _FINISHED_TRIALS:
            continue
        mine = epochs.get(trial.trial_id, [])
        finished[trial.trial_id] = _replay(trial, mine[-1] if mine else None, job)
        summaries[trial.trial_id] = recorded_trial(trial, mine, job.metric)
        counts[trial.status] = counts.get(trial.status, 0) + 1
    ranked = [t for t in trials if t.status in RANKED and t.value is not None]
    pick = max if row.mode == "max" else min
    best = pick(ranked, key=lambda t: float(t.value or 0.0)) if ranked else None
    ends = [t.updated_at for t in trials] + [row.heartbeat_at or row.started_at]
    return Resume(
        sweep_id=row.sweep_id,
        sweep_dir=Path(row.sweep_dir or ""),
        started_at=iso_utc(row.started_at),
        previous_s=max(0.0, (max(ends) - row.started_at).total_seconds()),
        finished=finished,
        counts=counts,
        epochs_done=sum(int(t.epochs or 0) for t in trials),
        best=(float(best.value), dict(best.config)) if best is not None and best.value is not None else None,
        summaries=summaries,
    )


def _replay(trial: Any, last_epoch: Any, job: Job) -> dict[str, Any]:
    """The result the trainable hands back for a finished trial: its last epoch, as recorded."""
    result: dict[str, Any] = dict(last_epoch.metrics) if last_epoch is not None else {}
    result["training_iteration"] = int(trial.epochs or 0)
    if job.metric not in result or trial.status in (DIVERGED, ERRORED):
        result[job.metric] = job.worst_value  # what the searcher was (or would have been) told
    result[DIVERGED_KEY] = trial.status == DIVERGED
    if trial.status == STOPPED and "patience" in (trial.message or ""):
        result[EARLY_STOPPED_KEY] = True
    if trial.status == ERRORED:
        result[ERROR_KEY] = trial.message or "raised an error"
    result[REPLAYED_KEY] = trial.status
    return result
