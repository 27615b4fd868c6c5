"""Test databases: a fresh SQLite file, or a fresh database on the PostgreSQL server CI starts."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

PG_ENV = "TUNING_SERVICE_TEST_PG_URL"
# The PostgreSQL variants need a server, so they carry the `integration` marker: `-m "not
# integration"` is the run without Ray and without servers.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


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


# A multi-objective sweep, as the store records one (tests/store/test_front.py, the dashboard).
OBJECTIVES = ["val_accuracy:max", "params:min"]
# trial -> status, per-epoch (val_accuracy, params)
TRIALS = {
    "big": ("completed", [(0.80, 90000.0), (0.97, 90000.0)]),
    "mid": ("completed", [(0.85, 20000.0), (0.93, 20000.0)]),
    "small": ("stopped early", [(0.70, 2000.0)]),
    "worse": ("completed", [(0.60, 30000.0), (0.90, 30000.0)]),  # dominated by mid
    "huge": ("infeasible", [(0.99, 500000.0)]),  # the most accurate, but over the limit
}


def record_multi_objective_sweep(store, sweep_id: str, objectives=OBJECTIVES) -> None:
    """A finished nsga2 sweep of TRIALS on (val_accuracy, params), under params<=100000."""
    store.create_sweep(
        sweep_id, job="digits", job_ref="digits", metric="val_accuracy", mode="max", searcher="nsga2",
        scheduler="asha", seed=0, space={}, spec={"job": "digits", "objectives": objectives,
        "constraints": ["params<=100000"]}, versions={},
    )  # fmt: skip
    for n, (trial, (status, epochs)) in enumerate(TRIALS.items()):
        store.start_trial(sweep_id, trial, {"units": 16 * (n + 1)})
        for epoch, (acc, params) in enumerate(epochs, 1):
            store.record_epoch(
                sweep_id, trial, epoch, mode="max", value=acc, metrics={"val_accuracy": acc, "params": params}
            )
        store.finish_trial(sweep_id, trial, status)
    store.finish_sweep(sweep_id, "finished")
