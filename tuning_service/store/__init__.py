"""The results database: every sweep, trial and epoch, in SQLite by default or PostgreSQL by URL.

The records and tables load on first use (PEP 562): they import SQLAlchemy (0.2 s), and a
sweep checks its database (`check_database`) before its worker fork server starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tuning_service.store.engine import DB_ENV, DB_FILE, StoreError, parse_url, redact, resolve_url

if TYPE_CHECKING:
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

# The module of each name loaded on first use.
_LOADED_ON_USE = {
    **dict.fromkeys(
        ("RANKED", "EpochRow", "ExploitRow", "RefitRow", "Store", "SweepRow", "TrialRow", "open_store"),
        "records",
    ),
    **dict.fromkeys(("FAILED", "FINISHED", "INTERRUPTED", "RUNNING"), "schema"),
}


def __getattr__(name: str) -> Any:
    module = _LOADED_ON_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def check_database(db: str | None, storage: str) -> None:
    """Check the database a sweep will write to, before Ray starts; creates nothing. The
    default database (neither ``--db`` nor $TUNING_SERVICE_DB) is checked without SQLAlchemy."""
    from tuning_service.store.engine import check_reachable, check_sqlite_path, default_database

    default = default_database(db, storage)
    if default is not None:
        check_sqlite_path(default, must_exist=False)
        return
    check_reachable(parse_url(resolve_url(db, storage)), must_exist=False)
