"""The results database: every sweep, trial and epoch, in SQLite by default or PostgreSQL by URL."""

from __future__ import annotations

# The nightly scheduler's tables, on the same metadata: migrations and checks see one schema.
from tuning_service.store import scheduletables as _scheduletables  # noqa: F401
from tuning_service.store.engine import DB_ENV, DB_FILE, StoreError, parse_url, redact, resolve_url
from tuning_service.store.records import (
    RANKED,
    EpochRow,
    ExploitRow,
    RefitRow,
    Store,
    SweepRow,
    TrialRow,
    open_store,
)
from tuning_service.store.schema import FAILED, FINISHED, INTERRUPTED, RUNNING

__all__ = [
    "DB_ENV",
    "DB_FILE",
    "FAILED",
    "FINISHED",
    "INTERRUPTED",
    "RANKED",
    "RUNNING",
    "EpochRow",
    "ExploitRow",
    "RefitRow",
    "Store",
    "StoreError",
    "SweepRow",
    "TrialRow",
    "check_database",
    "open_store",
    "parse_url",
    "redact",
    "resolve_url",
]


def check_database(db: str | None, storage: str) -> None:
    """Check the database a sweep will write to, before Ray starts; creates nothing."""
    from tuning_service.store.engine import check_reachable

    check_reachable(parse_url(resolve_url(db, storage)), must_exist=False)
