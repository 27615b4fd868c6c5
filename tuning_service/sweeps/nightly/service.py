"""One scheduled run of a named sweep (lock, warm start, sweep, what changed, export), and run-due."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from tuning_service.core.errors import TuningServiceError
from tuning_service.core.spec import SweepSpec
from tuning_service.store import Store, open_store
from tuning_service.store.scheduletables import FAILED, FINISHED, INTERRUPTED, SKIPPED
from tuning_service.sweeps.nightly import change as changes
from tuning_service.sweeps.nightly import cron
from tuning_service.sweeps.nightly.history import (
    Skipped,
    finish_run,
    last_scheduled,
    runs,
    start_run,
    update_run,
)
from tuning_service.sweeps.nightly.schedulefile import TARGETS, Schedule, ScheduledSweep
from tuning_service.sweeps.nightly.targets import RunOutcome, Stop
from tuning_service.sweeps.nightly.warmstart import earlier_best_configs

log = logging.getLogger(__name__)


class Execute(Protocol):
    """Runs one sweep where its target says (tests pass their own); stops once ``stop()`` says why."""

    def __call__(self, sweep: ScheduledSweep, spec: SweepSpec, *, stop: Stop | None = None) -> RunOutcome: ...


EXPORT_FILE = "best_config.json"


@dataclass(frozen=True)
class RunReport:
    """How one due run went: what the CLI prints and `schedule run` hands to its listener."""

    name: str
    status: str  # finished, failed, skipped (or interrupted)
    scheduled_for: datetime
    run_id: int | None = None
    sweep_id: str | None = None
    message: str | None = None
    change: dict[str, Any] | None = None
    files: tuple[Path, ...] = ()

    def line(self) -> str:
        if self.status == FINISHED and self.change is not None:
            return changes.headline(self.change)
        return f"{self.name}: {self.status}" + (f": {self.message}" if self.message else "")


def open_history(sweep: ScheduledSweep) -> Store:
    """The database holding ``sweep``'s runs and lock (the one its results go to, when run here)."""
    return open_store(sweep.spec.db, storage=sweep.storage)


def due_time(store: Store, sweep: ScheduledSweep, now: datetime) -> datetime | None:
    """The scheduled time to run now, if any: the latest cron time after the last recorded run.

    Times missed while nothing ran (a scheduler down, a machine off) collapse into this one.
    """
    latest = cron.latest_fire(sweep.trigger(), now)
    if latest is None:
        return None
    last = last_scheduled(store, sweep.name)
    return latest if last is None or latest > last else None


def run_due(
    schedule: Schedule,
    *,
    now: datetime | None = None,
    execute: Execute | None = None,
    trigger: str = "run-due",
    on_report: Callable[[RunReport], None] | None = None,
) -> list[RunReport]:
    """Run, one after another, every sweep of ``schedule`` that is due at ``now``."""
    reports = []
    for sweep in schedule.sweeps:
        report = run_if_due(sweep, now=now, execute=execute, trigger=trigger)
        if report is not None:
            reports.append(report)
            if on_report is not None:
                on_report(report)
    return reports


def run_if_due(
    sweep: ScheduledSweep, *, now: datetime | None = None, execute: Execute | None = None, trigger: str
) -> RunReport | None:
    """Run ``sweep`` if it is due; None if it is not."""
    now = now or datetime.now(UTC)
    with open_history(sweep) as store:
        scheduled_for = due_time(store, sweep, now)
        if scheduled_for is None:
            log.debug("%s: not due", sweep.name)
            return None
        return run_once(store, sweep, scheduled_for, execute=execute, trigger=trigger)


def run_once(
    store: Store,
    sweep: ScheduledSweep,
    scheduled_for: datetime,
    *,
    execute: Execute | None = None,
    trigger: str,
) -> RunReport:
    """One run: lock, warm start, the sweep, what changed, export. A failed sweep is recorded, not raised."""
    started = start_run(
        store,
        sweep.name,
        job=sweep.job_name,
        scheduled_for=scheduled_for,
        trigger=trigger,
        ttl_s=sweep.lock_ttl_s,
    )
    if isinstance(started, Skipped):
        log.warning("%s: %s", sweep.name, started.run.message)
        return RunReport(sweep.name, SKIPPED, scheduled_for, started.run.run_id, message=started.run.message)
    run, lock = started.run, started.lock
    with lock.kept_alive():
        try:
            points = earlier_best_configs(
                store, sweep.name, metric=sweep.metric, mode=sweep.mode, count=sweep.warm_start
            )
            update_run(store, run.run_id, warm_start=len(points), metric=sweep.metric, mode=sweep.mode)
            log.info(
                "%s: run %d for %s, warm-started from %d config(s)",
                sweep.name,
                run.run_id,
                scheduled_for,
                len(points),
            )
            outcome = (execute or TARGETS[sweep.target])(
                sweep, sweep.spec.replace(points_to_evaluate=tuple(points)), stop=lock.lost
            )
        except (Exception, KeyboardInterrupt) as exc:
            if lock.lost() is not None:
                return _lost(store, sweep, run, scheduled_for, lock.lost() or "")
            interrupted = isinstance(exc, KeyboardInterrupt)
            message = _one_line(exc)
            finish_run(store, run.run_id, INTERRUPTED if interrupted else FAILED, message=message)
            if interrupted:
                raise
            if not isinstance(exc, TuningServiceError):
                log.exception("%s: run %d failed", sweep.name, run.run_id)
            return RunReport(sweep.name, FAILED, scheduled_for, run.run_id, message=message)
        if lock.lost() is not None:  # the sweep ended, but the run is no longer this scheduler's
            return _lost(store, sweep, run, scheduled_for, lock.lost() or "", sweep_id=outcome.sweep_id)
        earlier = [r for r in runs(store, sweep.name, statuses=(FINISHED,)) if r.run_id != run.run_id]
        summary = changes.summarize(
            name=sweep.name,
            job=sweep.job_name,
            metric=outcome.metric,
            mode=outcome.mode,
            value=outcome.value,
            config=outcome.config,
            run_id=run.run_id,
            sweep_id=outcome.sweep_id,
            scheduled_for=scheduled_for,
            earlier=earlier,
        )
        finish_run(
            store,
            run.run_id,
            FINISHED,
            sweep_id=outcome.sweep_id,
            submission_id=outcome.submission_id,
            metric=outcome.metric,
            mode=outcome.mode,
            best_value=outcome.value,
            change=summary,
        )
        files = _write_files(store, sweep, summary)
    return RunReport(
        sweep.name,
        FINISHED,
        scheduled_for,
        run.run_id,
        sweep_id=outcome.sweep_id,
        change=summary,
        files=tuple(files),
    )


def _lost(
    store: Store,
    sweep: ScheduledSweep,
    run: Any,
    scheduled_for: datetime,
    why: str,
    *,
    sweep_id: str | None = None,
) -> RunReport:
    """A run whose lock another scheduler took over: it is interrupted (the scheduler that took
    the lock marked it so already), and it writes no export: the new holder's run does."""
    finish_run(store, run.run_id, INTERRUPTED, message=f"interrupted: {why}")
    log.warning("%s: run %d stopped: %s", sweep.name, run.run_id, why)
    return RunReport(sweep.name, INTERRUPTED, scheduled_for, run.run_id, sweep_id=sweep_id, message=why)


def _write_files(store: Store, sweep: ScheduledSweep, summary: dict[str, Any]) -> list[Path]:
    """What changed (JSON, Markdown) and the job's best config, exported next to them.

    A file that cannot be written is logged: the run itself is recorded and stays finished.
    """
    from tuning_service.sweeps.aggregate import best_configs, render_export, write_export

    files: list[Path] = []
    try:
        files += changes.write_files(summary, sweep.export_dir)
        records = best_configs(store, job=sweep.job_name, top=1)
        files.append(
            write_export(
                render_export(records, "json", database=store.display_url), sweep.export_dir / EXPORT_FILE
            )
        )
    except (OSError, TuningServiceError) as exc:
        log.warning("%s: could not write %s: %s", sweep.name, sweep.export_dir, exc)
    return files


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (
        f"{type(exc).__name__}: {text[0]}"
        if text and not isinstance(exc, TuningServiceError)
        else (text[0] if text else type(exc).__name__)
    )
