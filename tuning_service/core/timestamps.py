"""How the service writes a moment in its files, records and messages: UTC, ISO 8601, to the second."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(moment: datetime | None = None) -> str:
    """``moment`` (now if None) as ``2026-12-05T13:45:17+00:00``.

    A naive moment is read as UTC, the results store's convention, not as the machine's local time.
    """
    if moment is None:
        moment = datetime.now(UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")
