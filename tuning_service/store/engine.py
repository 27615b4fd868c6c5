"""Database URLs and engines: SQLite (WAL, busy timeout, immediate transactions) or PostgreSQL."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from tuning_service.core.credentials import PG_PASSWORD_HELP

# Database URLs are checked below the store (a sweep's settings check --db); parse_url stays here too.
from tuning_service.core.dburl import parse_url as parse_url
from tuning_service.core.dburl import redact
from tuning_service.core.errors import InputError, TuningServiceError

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import URL, Connection, Engine

log = logging.getLogger(__name__)

DB_ENV = "TUNING_SERVICE_DB"
DB_FILE = "tuning.db"
# An unreachable server must fail a command within seconds, not hang it.
CONNECT_TIMEOUT_S = 5
# No statement of ours waits longer than this for PostgreSQL (a lock held by a stuck client, a
# server in trouble); the user can change it. Each write is one short transaction.
STATEMENT_TIMEOUT_ENV = "TUNING_SERVICE_DB_STATEMENT_TIMEOUT_S"
DEFAULT_STATEMENT_TIMEOUT_S = 60.0
# A server (or the network to it) that vanishes without closing the connection is noticed within
# about a minute: TCP keepalive probes on an idle connection, and a bound on unacknowledged data.
_PG_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,  # milliseconds
}
# SQLite waits this long for another writer's lock before giving up.
BUSY_TIMEOUT_S = 30.0
# Transient failures (a locked SQLite file, a PostgreSQL deadlock or restart) are retried this long.
RETRY_DEADLINE_S = 60.0
# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, lock not available,
# and the "server is going away / starting up" family.
_PG_TRANSIENT = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "08000", "08003", "08006"}

T = TypeVar("T")


class StoreError(TuningServiceError):
    """The results database failed while a sweep or command was using it (exit 1)."""


def resolve_url(db: str | None, storage: str | os.PathLike[str]) -> str:
    """``--db``, else $TUNING_SERVICE_DB, else the SQLite file in the results root."""
    default = default_database(db, storage)
    if default is None:
        return db or os.environ[DB_ENV]
    # Quoted: a folder named with "?" or "%" is part of the path, not a query or an escape.
    return f"sqlite:///{quote(str(default))}"


def default_database(db: str | None, storage: str | os.PathLike[str]) -> Path | None:
    """The SQLite file in the results root where neither ``db`` nor $TUNING_SERVICE_DB names a
    database (None: one of them does)."""
    if db or os.environ.get(DB_ENV):
        return None
    return Path(os.path.expanduser(storage)).absolute() / DB_FILE


def sqlite_path(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite":
        return None
    return Path(os.path.expanduser(url.database or "")).absolute()


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    return str(value)


def dumps_json(value: Any) -> str:
    """JSON for the database: numpy scalars as numbers, NaN and infinities as null."""
    return json.dumps(_finite(value), default=_json_default, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, str | bytes):
        return _finite(item())
    return value


def create_engine(url: URL, *, read_only: bool = False) -> Engine:
    """An engine tuned for many short writes from several processes at once.

    ``read_only``: an engine that cannot write, whatever runs on it (the dashboard): SQLite
    opened with ``mode=ro`` and ``query_only``, PostgreSQL sessions in read-only transactions.
    """
    import sqlalchemy as sa
    from sqlalchemy import event

    if read_only and url.get_backend_name() == "sqlite":
        return _read_only_sqlite(url)
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT_S}, json_serializer=dumps_json, pool_pre_ping=False
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # The driver's own transaction handling defers BEGIN; we issue our own below.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            # WAL: readers never block the writer and the writer never blocks readers.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # IMMEDIATE takes the write lock up front (waiting through busy_timeout), so a
            # transaction never fails half-way when it upgrades from reading to writing.
            readonly = conn.get_execution_options().get("readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    from tuning_service.core.envvars import positive_seconds

    statement_ms = round(1000 * positive_seconds(STATEMENT_TIMEOUT_ENV, DEFAULT_STATEMENT_TIMEOUT_S))
    # Lock waits count as statement time: a lock another client never releases ends too.
    options = f"-c statement_timeout={statement_ms}"
    if read_only:
        # Every transaction of the session is read-only: the server refuses any write in it.
        options += " -c default_transaction_read_only=on"
    return sa.create_engine(
        url,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": "tuning-service",
            "options": options,
            **_PG_KEEPALIVE,
        },
        json_serializer=dumps_json,
        pool_pre_ping=True,
    )


def _read_only_sqlite(url: URL) -> Engine:
    """SQLite opened with ``mode=ro``: the file cannot be written (nor created) through it."""
    import sqlite3

    import sqlalchemy as sa
    from sqlalchemy import event

    path = sqlite_path(url)
    uri = f"{path.as_uri()}?mode=ro"  # type: ignore[union-attr]

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        conn.isolation_level = None  # BEGIN is ours, below
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA query_only = ON")
        return conn

    # QueuePool: "sqlite://" alone would get the one-connection-per-thread pool of an in-memory database.
    engine = sa.create_engine(
        "sqlite://", creator=connect, json_serializer=dumps_json, poolclass=sa.pool.QueuePool
    )

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")  # a read transaction: one consistent view per page

    return engine


def check_reachable(url: URL, *, must_exist: bool) -> None:
    """Fail fast with one line when the database cannot be used; writes nothing.

    For SQLite: the file must exist (``must_exist``) or its directory must be creatable.
    For PostgreSQL: connect (bounded by CONNECT_TIMEOUT_S) and run one query.
    """
    path = sqlite_path(url)
    if path is not None:
        check_sqlite_path(path, must_exist=must_exist)
        return
    import sqlalchemy as sa

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - whatever the driver raised, as one line
        reason = describe(exc)
        raise InputError(
            f"cannot connect to database {redact(url)!r}: {reason}{password_hint(reason)}"
        ) from None
    finally:
        engine.dispose()


def check_sqlite_path(path: Path, *, must_exist: bool) -> None:
    """`check_reachable` for a SQLite file, without SQLAlchemy."""
    _refuse_network_filesystem(path)
    if os.path.exists(path):
        if not os.path.isfile(path):
            raise InputError(f"results database {str(path)!r} is not a file")
        _check_sqlite_file(path)
        return
    if must_exist:
        raise InputError(
            f"no results database at {str(path)!r}; run a sweep first, or pass --db URL (or set {DB_ENV})"
        )
    probe = path.parent
    while not os.path.exists(probe):
        probe = probe.parent
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"results database {str(path)!r} cannot be created in {str(probe)!r}")


def password_hint(reason: str) -> str:
    """Where a refused password should come from: never a URL on a command line."""
    text = reason.lower()
    if "no password supplied" in text or "password authentication failed" in text:
        return f"; give the password in {PG_PASSWORD_HELP}"
    return ""


def _refuse_network_filesystem(path: Path) -> None:
    """SQLite's WAL mode needs shared memory and locks every client sees: on NFS and its kind it loses writes."""
    from tuning_service.store.filesystems import network_mount

    mount = network_mount(path)
    if mount is not None:
        raise InputError(
            f"results database {str(path)!r} would be SQLite on a network filesystem ({mount.fstype} at "
            f"{str(mount.point)!r}), where its locking is unsafe and writes get lost; use PostgreSQL: "
            f"--db postgresql://USER@HOST/DB (or {DB_ENV}), or keep --storage on a local disk"
        )


def _check_sqlite_file(path: Path) -> None:
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"results database {str(path)!r} is not a usable SQLite file: {exc}") from None


def describe(exc: BaseException) -> str:
    """A driver error as one line: the first lines of its message, without SQL or traceback."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).strip().splitlines() if line.strip()]
    return "; ".join(lines[:2]) or type(orig).__name__


def is_transient(exc: BaseException) -> bool:
    """Locks, deadlocks and lost connections: retrying the whole transaction is safe."""
    import sqlalchemy as sa

    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    if sqlstate:
        return sqlstate in _PG_TRANSIENT
    text = str(orig).lower()
    return isinstance(exc, sa.exc.OperationalError) and ("locked" in text or "busy" in text)


def retrying(operation: Callable[[], T], *, what: str, deadline_s: float = RETRY_DEADLINE_S) -> T:
    """Run ``operation`` (one whole transaction) again on transient failures, with jittered backoff."""
    import sqlalchemy as sa

    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return operation()
        except sa.exc.SQLAlchemyError as exc:
            attempt += 1
            elapsed = time.monotonic() - started
            if not is_transient(exc) or elapsed > deadline_s:
                raise StoreError(f"results database: {what} failed: {describe(exc)}") from exc
            delay = min(1.0, 0.005 * 2**attempt) * random.uniform(0.5, 1.5)
            log.debug("%s: transient database error (attempt %d), retrying: %s", what, attempt, describe(exc))
            time.sleep(delay)


def transaction(engine: Engine, work: Callable[[Connection], T], *, what: str, readonly: bool = False) -> T:
    """``work`` in one transaction, retried whole on transient failures (see `retrying`).

    SQLite begins a writing transaction with the write lock (BEGIN IMMEDIATE), so a
    check-then-write is atomic; ``readonly`` begins without it, for reads that need not wait
    for a writer.
    """
    if readonly:
        engine = engine.execution_options(readonly=True)

    def attempt() -> T:
        with engine.begin() as conn:
            return work(conn)

    return retrying(attempt, what=what)


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT into ``table`` with the connection's dialect's ``on_conflict_do_*`` clauses."""
    return insert_for(conn.dialect.name, table)


def insert_for(dialect: str, table: Table) -> Any:
    """An INSERT into ``table`` with ``on_conflict_do_*`` clauses for the dialect named."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)
