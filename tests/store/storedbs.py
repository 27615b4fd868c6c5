"""Test databases: a fresh SQLite file, or a fresh database on the PostgreSQL server CI starts."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

PG_ENV = "TUNING_SERVICE_TEST_PG_URL"
BACKENDS = ["sqlite", "postgresql"]


def pg_admin_url() -> str:
    """The test server's URL; skipped without one, except in CI where a missing server fails."""
    url = os.environ.get(PG_ENV)
    if url:
        return url
    reason = f"{PG_ENV} is not set: no PostgreSQL server to test against (.ci/run starts one)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must test PostgreSQL, but {reason}")
    pytest.skip(reason)


def new_pg_database(admin_url: str) -> str:
    """CREATE DATABASE with a random name; returns its URL."""
    import sqlalchemy as sa

    name = f"ts_test_{secrets.token_hex(6)}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(admin_url: str, url: str) -> None:
    import sqlalchemy as sa

    name = sa.engine.make_url(url).database
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def _admin_for_sqlalchemy(url: str) -> str:
    return (
        url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
    )


def make_db_url(backend: str, tmp_path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'tuning.db'}"
        return
    admin = _admin_for_sqlalchemy(pg_admin_url())
    url = new_pg_database(admin)
    try:
        yield url
    finally:
        drop_pg_database(admin, url)
