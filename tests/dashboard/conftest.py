"""Dashboard fixtures: a results database on SQLite and PostgreSQL, filled through the store's own writes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashdb import fill

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from storedbs import BACKENDS, make_db_url  # noqa: E402


@pytest.fixture(autouse=True)
def _no_ambient_database(monkeypatch):
    monkeypatch.delenv("TUNING_SERVICE_DB", raising=False)


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> Iterator[str]:
    yield from make_db_url(request.param, tmp_path)


@pytest.fixture
def filled_url(db_url) -> str:
    from tuning_service.store import open_store

    with open_store(db_url) as store:
        fill(store)
    return db_url


@pytest.fixture
def client(filled_url):
    from starlette.testclient import TestClient

    from tuning_service.dashboard import create_app, open_read_only

    store = open_read_only(filled_url, "unused")
    with TestClient(create_app(store)) as test_client:
        yield test_client
    store.close()
