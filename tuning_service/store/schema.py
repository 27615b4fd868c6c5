"""The results tables: sweeps, trials, epochs and refits, keyed so every write can be an upsert."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

# Sweep statuses. Trial statuses are the result statuses (completed, stopped early,
# diverged, errored) plus these two for trials that have not finished.
RUNNING, FINISHED, FAILED, INTERRUPTED = "running", "finished", "failed", "interrupted"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(referred_table_name)s",
    }
)

sweeps = Table(
    "sweeps",
    metadata,
    Column("sweep_id", String(64), primary_key=True),
    Column("job", String(200), nullable=False, index=True),
    Column("job_ref", Text, nullable=False),  # what `run` was given: a name, module:attr or a file
    Column("metric", String(200), nullable=False),
    Column("mode", String(3), nullable=False),
    Column("searcher", String(64), nullable=False),
    Column("scheduler", String(64), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("num_samples", Integer),
    Column("max_epochs", Integer),
    Column("space", JSON, nullable=False),
    Column("spec", JSON, nullable=False),  # the SweepSpec without the database URL
    Column("cluster_address", Text),
    Column("sweep_dir", Text),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("driver", JSON),  # processes.identity() of the driver: boot id, pid namespace, start time
    Column("versions", JSON, nullable=False),
    Column("status", String(32), nullable=False, index=True),
    Column("message", Text),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("heartbeat_at", UTCDateTime),
)

trials = Table(
    "trials",
    metadata,
    Column("sweep_id", String(64), ForeignKey("sweeps.sweep_id", ondelete="CASCADE"), primary_key=True),
    Column("trial_id", String(128), primary_key=True),
    Column("config", JSON, nullable=False),
    Column("status", String(32), nullable=False),
    Column("message", Text),
    Column("value", Float),  # best value of the sweep's metric over the trial's epochs
    Column("best_epoch", Integer),
    Column("epochs", Integer, nullable=False, default=0),
    Column("train_time_s", Float),
    Column("duration_s", Float),
    Column("node_ip", String(64)),
    Column("node_id", String(128)),
    Column("hostname", String(255)),
    Column("checkpoint", Text),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_trials_status_value", "status", "value"),
)

epochs = Table(
    "epochs",
    metadata,
    Column("sweep_id", String(64), primary_key=True),
    Column("trial_id", String(128), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("value", Float),  # the sweep's metric; NULL when the epoch diverged
    Column("diverged", Boolean, nullable=False, default=False),
    Column("metrics", JSON, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(
        ["sweep_id", "trial_id"], ["trials.sweep_id", "trials.trial_id"], ondelete="CASCADE"
    ),
)

refits = Table(
    "refits",
    metadata,
    Column("sweep_id", String(64), primary_key=True),
    Column("trial_id", String(128), primary_key=True),
    Column("config", JSON, nullable=False),
    Column("epochs", Integer, nullable=False),
    Column("train_rows", Integer, nullable=False),
    Column("test_rows", Integer, nullable=False),
    Column("test_metric", String(200), nullable=False),
    Column("test_value", Float),
    Column("test_metrics", JSON, nullable=False),
    Column("model_path", Text, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("versions", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(
        ["sweep_id", "trial_id"], ["trials.sweep_id", "trials.trial_id"], ondelete="CASCADE"
    ),
)

# Population Based Training: each time a trial took over another's checkpoint ("exploit"),
# numbered in the sweep's order; ``changes`` maps a hyperparameter to its old, donor and new values.
exploits = Table(
    "exploits",
    metadata,
    Column("sweep_id", String(64), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("trial_id", String(128), nullable=False),
    Column("epoch", Integer, nullable=False),  # the trial's last epoch before it copied the donor
    Column("value", Float),  # the trial's metric then
    Column("donor_id", String(128), nullable=False),
    Column("donor_epoch", Integer, nullable=False),  # the epoch of the donor's copied checkpoint
    Column("donor_value", Float),
    Column("changes", JSON, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(["sweep_id"], ["sweeps.sweep_id"], ondelete="CASCADE"),
)

# The nightly scheduler's tables join this metadata wherever the schema loads: migrations,
# `create_all` and the schema checks see every table (its module needs `metadata` above).
from tuning_service.store import scheduletables as _scheduletables  # noqa: E402, F401
