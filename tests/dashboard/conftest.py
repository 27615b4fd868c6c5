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


@pytest.fixture(scope="module", params=BACKENDS)
def shared_url(request, tmp_path_factory) -> Iterator[str]:
    """One filled database per backend for a module whose tests only read (filling one costs seconds)."""
    from tuning_service.store import open_store

    for url in make_db_url(request.param, tmp_path_factory.mktemp("shared")):
        with open_store(url) as store:
            fill(store)
        yield url


def serve(url: str) -> Iterator[object]:
    """The dashboard over ``url``, in-process (Starlette's TestClient: no socket, no server)."""
    from starlette.testclient import TestClient

    from tuning_service.dashboard import create_app, open_read_only

    store = open_read_only(url, "unused")
    with TestClient(create_app(store)) as test_client:
        yield test_client
    store.close()


@pytest.fixture(scope="module")
def client(shared_url):
    """The dashboard over the module's shared database: for tests that only read."""
    yield from serve(shared_url)


@pytest.fixture
def own_client(filled_url):
    """The dashboard over a database of the test's own, which it may write to."""
    yield from serve(filled_url)
