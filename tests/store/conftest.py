"""Store fixtures: every test that takes ``db_url`` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from storedbs import BACKENDS, make_db_url


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> Iterator[str]:
    """An empty results database: a SQLite file, then a PostgreSQL database."""
    yield from make_db_url(request.param, tmp_path)


@pytest.fixture
def store(db_url):
    from tuning_service.store import open_store

    with open_store(db_url) as opened:
        yield opened


@pytest.fixture(autouse=True)
def _no_ambient_database(monkeypatch):
    """A developer's $TUNING_SERVICE_DB must not leak into tests."""
    monkeypatch.delenv("TUNING_SERVICE_DB", raising=False)


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI installs a handler on the captured stderr; later tests must not log to it once closed."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = saved[0], saved[1]
