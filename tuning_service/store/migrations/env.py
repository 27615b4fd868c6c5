"""Alembic environment: runs on the connection the store passes in, or on -x db=URL from the alembic CLI."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from tuning_service.store.schema import metadata


def _run(connection: Connection) -> None:
    # Batch mode lets later migrations ALTER tables on SQLite (it copies the table).
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
else:
    from tuning_service.store.engine import DB_ENV, create_engine, parse_url

    _url = context.get_x_argument(as_dictionary=True).get("db") or os.environ.get(DB_ENV)
    if not _url:
        raise SystemExit(f"give the database: alembic -x db=URL ... (or set {DB_ENV})")
    _engine = create_engine(parse_url(_url))
    with _engine.begin() as _conn:
        _run(_conn)
    _engine.dispose()
