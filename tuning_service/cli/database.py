"""The --db and --storage options of the results commands, and their shared output helpers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from tuning_service.core.spec import DEFAULT_STORAGE
from tuning_service.store import DB_ENV, Store, open_store


def database_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--db URL`` and ``--storage DIR`` (where the default SQLite file lives)."""
    command = click.option(
        "--storage",
        default=DEFAULT_STORAGE,
        show_default=True,
        help="Results root; the default database is STORAGE/tuning.db.",
    )(command)
    return click.option(
        "--db",
        metavar="URL",
        help=f"Results database: sqlite:///PATH or postgresql://USER@HOST/DB [default: ${DB_ENV}, else STORAGE/tuning.db].",
    )(command)


def open_for_reading(db: str | None, storage: str) -> Store:
    """The recorded results; a missing database is bad input and is not created."""
    return open_store(db, storage=storage, must_exist=True)


def check_top(top: int) -> None:
    from tuning_service.core.errors import InputError

    if top < 1:
        raise InputError(f"--top must be an integer >= 1, got {top}")


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) and abs(value) >= 1e-3 else f"{value:.4g}"
    return str(value)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
