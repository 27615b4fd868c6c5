"""The nightly scheduler's tables (run history and per-sweep locks), on the results store's metadata.

The store owns every table, so that it imports nothing above it.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, String, Table, Text

from tuning_service.store.schema import UTCDateTime, metadata

# Run statuses: a run is RUNNING until it ends as one of the others. SKIPPED: it was due
# while the sweep's previous run still held the lock; INTERRUPTED: its scheduler died.
RUNNING, FINISHED, FAILED, SKIPPED, INTERRUPTED = "running", "finished", "failed", "skipped", "interrupted"
RUN_STATUSES = (RUNNING, FINISHED, FAILED, SKIPPED, INTERRUPTED)

schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),  # the sweep's name in the schedule file
    Column("job", String(200), nullable=False),
    Column("scheduled_for", UTCDateTime, nullable=False),  # the cron time this run answers
    Column("trigger", String(32), nullable=False),  # scheduler, catch-up, run-due
    Column("status", String(32), nullable=False),
    Column("message", Text),
    Column("sweep_id", String(64)),  # the sweep it ran (no foreign key: a submitted one may land later)
    Column("submission_id", String(200)),
    Column("warm_start", Integer, nullable=False, default=0),  # configs from earlier runs evaluated first
    Column("metric", String(200)),
    Column("mode", String(3)),
    Column("best_value", Float),
    Column("change", JSON),  # the "what changed" summary: vs previous run and all-time best
    Column("host", String(255)),
    Column("pid", Integer),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Index("ix_schedule_runs_name_scheduled_for", "name", "scheduled_for"),
)

schedule_locks = Table(
    "schedule_locks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(300), nullable=False),  # host:pid:token of the scheduler holding it
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("process", JSON),  # processes.identity() of the scheduler: boot id, pid namespace, start time
    Column("run_id", Integer),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # renewed while the run lives
)
