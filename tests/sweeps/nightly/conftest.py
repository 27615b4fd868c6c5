"""Schedule fixtures: schedule files in tmp_path, a database on SQLite (and PostgreSQL when CI has one)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "store"))
from storedbs import BACKENDS, make_db_url  # noqa: E402


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


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> Iterator[str]:
    """An empty results database: a SQLite file, then a fresh PostgreSQL database."""
    yield from make_db_url(request.param, tmp_path)
