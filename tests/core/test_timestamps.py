"""The one way the service writes a moment: UTC, to the second, whatever the machine's time zone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tuning_service.core.timestamps import iso_utc


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is five hours behind UTC in December."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_naive_moment_is_read_as_utc_not_as_local_time(new_york: None) -> None:
    assert iso_utc(datetime(2026, 12, 5, 13, 45, 17, 900_000)) == "2026-12-05T13:45:17+00:00"


def test_an_aware_moment_elsewhere_is_written_in_utc(new_york: None) -> None:
    tokyo = timezone(timedelta(hours=9))
    assert iso_utc(datetime(2026, 12, 5, 22, 45, 17, tzinfo=tokyo)) == "2026-12-05T13:45:17+00:00"


def test_no_moment_is_now_in_utc(new_york: None) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    written = datetime.fromisoformat(iso_utc())
    assert written.utcoffset() == timedelta(0)
    assert before <= written <= datetime.now(UTC)
