"""Schedule fixtures: schedule files in tmp_path, a database on SQLite (and PostgreSQL when CI has one)."""

from __future__ import annotations

import os
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ENV = "TUNING_SERVICE_TEST_PG_URL"


@pytest.fixture(autouse=True)
def _no_ambient_database(monkeypatch):
    """A developer's $TUNING_SERVICE_DB must not leak into tests."""
    monkeypatch.delenv("TUNING_SERVICE_DB", raising=False)


@pytest.fixture
def write_schedule(tmp_path):
    """Write a schedule file (dedented) into tmp_path; returns its path."""

    def write(text: str, name: str = "sweeps.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """An empty results database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tuning.db'}"
        return
    admin = os.environ.get(PG_ENV)
    if not admin:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must test PostgreSQL, but {PG_ENV} is not set")
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against (.ci/run starts one)")
    import sqlalchemy as sa

    admin = admin.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"ts_sched_{secrets.token_hex(6)}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False)
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
