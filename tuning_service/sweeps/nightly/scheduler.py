"""The long-running scheduler: APScheduler cron triggers, one sweep at a time, runs missed while down caught up."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tuning_service.sweeps.nightly.history import lock_holder, record_skipped
from tuning_service.sweeps.nightly.schedulefile import Schedule, ScheduledSweep
from tuning_service.sweeps.nightly.service import Execute, RunReport, open_history, run_if_due

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

log = logging.getLogger(__name__)
JOB_PREFIX = "sweep:"


def build_scheduler(
    schedule: Schedule,
    *,
    blocking: bool,
    execute: Execute | None = None,
    on_report: Callable[[RunReport], None] | None = None,
) -> BaseScheduler:
    """An APScheduler scheduler with one cron job per sweep; call ``start()`` on it.

    Sweeps run one at a time in one worker thread (an embedded Ray serves one sweep,
    and Ray's logs are redirected per sweep). Each job fires once at start-up too: it
    runs the sweep only if a cron time passed since its last recorded run, so runs
    missed while no scheduler was up are coalesced into one. ``coalesce`` and
    ``max_instances=1`` do the same for times missed while the scheduler was busy; a
    time that comes while the sweep itself is running is recorded as skipped.
    """
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    kind = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = kind(
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        # misfire_grace_time=None: a run that waited behind another sweep still runs.
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )
    started = datetime.now(UTC)
    running: set[str] = set()
    fired: set[str] = set()
    guard = threading.Lock()

    def fire(sweep: ScheduledSweep) -> None:
        with guard:
            running.add(sweep.name)
            trigger = "scheduler" if sweep.name in fired else "catch-up"  # the start-up firing
            fired.add(sweep.name)
        try:
            report = run_if_due(sweep, execute=execute, trigger=trigger)
            if report is not None and on_report is not None:
                on_report(report)
        except Exception:  # noqa: BLE001 - one sweep's trouble (a database down) must not stop the others
            log.exception("%s: scheduled run failed before it could be recorded", sweep.name)
        finally:
            with guard:
                running.discard(sweep.name)

    sweeps = {f"{JOB_PREFIX}{s.name}": s for s in schedule.sweeps}

    def busy(event: Any) -> None:
        """A cron time came while the previous run of that sweep still ran: record it as skipped."""
        sweep = sweeps.get(event.job_id)
        with guard:
            is_running = sweep is not None and sweep.name in running
        if (
            sweep is None or not is_running
        ):  # queued behind another sweep: it runs the latest time when its turn comes
            return
        when = max(event.scheduled_run_times)
        message = "skipped: the previous run of this sweep was still running in this scheduler"
        try:
            with open_history(sweep) as store:
                holder = lock_holder(store, sweep.name)
                if holder is None or holder.pid != os.getpid():
                    return  # its run is not recorded yet: it will take this time itself
                record_skipped(
                    store,
                    sweep.name,
                    job=sweep.job_name,
                    scheduled_for=when,
                    trigger="scheduler",
                    message=message,
                )
        except Exception:  # noqa: BLE001 - a missed record must not stop the scheduler
            log.exception("%s: could not record a skipped run", sweep.name)
        if on_report is not None:
            on_report(RunReport(sweep.name, "skipped", when, message=message))

    scheduler.add_listener(busy, EVENT_JOB_MAX_INSTANCES)
    for job_id, sweep in sweeps.items():
        scheduler.add_job(
            fire, trigger=sweep.trigger(), args=(sweep,), id=job_id, name=sweep.name, next_run_time=started
        )
    return scheduler
