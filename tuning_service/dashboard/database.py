"""The results database opened so that nothing can write through it (the dashboard's only handle)."""

from __future__ import annotations

import os

from tuning_service.core.errors import InputError
from tuning_service.store import DB_ENV, Store, parse_url, redact, resolve_url
from tuning_service.store.engine import check_reachable, create_engine, describe, password_hint, sqlite_path
from tuning_service.store.migrate import HEAD


def open_read_only(db: str | None, storage: str | os.PathLike[str]) -> Store:
    """The store of ``--db`` (else $TUNING_SERVICE_DB, else STORAGE/tuning.db), read-only by construction.

    Never creates or migrates a database: a missing one, one holding no results, or one at
    another schema revision is bad input (one line). The engine under the returned `Store`
    is SQLite's ``mode=ro`` or PostgreSQL sessions with ``default_transaction_read_only``:
    a write method called by mistake fails in the database, and changes nothing.
    """
    import sqlalchemy as sa

    url = parse_url(resolve_url(db, storage))
    if sqlite_path(url) is not None:
        check_reachable(url, must_exist=True)  # opens the file read-only; creates nothing
    engine = create_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            revision = (
                conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
                if "alembic_version" in tables
                else None
            )
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        reason = describe(exc)
        raise InputError(f"cannot read database {redact(url)!r}: {reason}{password_hint(reason)}") from None
    if revision is None:
        engine.dispose()
        raise InputError(
            f"database {redact(url)!r} holds no tuning-service results yet; run a sweep with --db "
            f"(or {DB_ENV}) pointing at it"
        )
    if revision != HEAD:
        engine.dispose()
        raise InputError(
            f"database {redact(url)!r} has schema revision {revision!r}, this dashboard reads {HEAD!r} and "
            "never migrates; run any other tuning-service command on it once (e.g. `tuning-service results "
            "--db URL`) to upgrade it, or use the tuning-service version that wrote it"
        )
    return Store(url, engine)
