"""Cron expressions with classic crontab meaning, as APScheduler triggers, and the last time one fired."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

# APScheduler's CronTrigger fields: the mapping form of `cron:` passes them straight through.
FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
# The five crontab fields, in their order.
CRONTAB = ("minute", "hour", "day", "month", "day_of_week")
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Cron counts days of the week from Sunday (0 and 7); APScheduler 3 from Monday (0).
# Names mean the same to both, so crontab days are rewritten as names.
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# How far back `latest_fire` looks for a sweep that never ran (a yearly cron fits).
LOOKBACK = timedelta(days=800)


def cron_fields(value: Any) -> dict[str, str]:
    """A ``cron:`` value -> APScheduler CronTrigger fields; ValueError says what is wrong.

    A string is a crontab line (``"30 2 * * 1-5"``, or ``@daily``) with crontab's
    meaning; a mapping names CronTrigger fields, seconds included (``{second: "*/10"}``).
    """
    if isinstance(value, str):
        text = MACROS.get(value.strip().lower(), value)
        parts = text.split()
        if len(parts) != len(CRONTAB):
            raise ValueError(
                f"a crontab expression has 5 fields (minute hour day-of-month month day-of-week), "
                f"got {len(parts)} in {value!r}; for seconds use the mapping form, e.g. {{second: '*/10'}}"
            )
        fields = dict(zip(CRONTAB, parts, strict=True))
        if fields["day"] != "*" and fields["day_of_week"] != "*":
            raise ValueError(
                f"{value!r} restricts both day-of-month and day-of-week: cron runs on days matching "
                "either, APScheduler only on days matching both; restrict one of them"
            )
        fields["day_of_week"] = _crontab_days(fields["day_of_week"])
        return fields
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in FIELDS]
        if unknown:
            raise ValueError(f"unknown cron field {unknown[0]!r} (accepted: {', '.join(FIELDS)})")
        if not value:
            raise ValueError(f"a cron mapping needs at least one of: {', '.join(FIELDS)}")
        bad = [k for k, v in value.items() if not isinstance(v, str | int) or isinstance(v, bool)]
        if bad:
            raise ValueError(f"cron field {bad[0]!r} must be a string or an integer, got {value[bad[0]]!r}")
        return {k: str(v) for k, v in value.items()}
    raise ValueError(f"expected a crontab string or a mapping of cron fields, got {type(value).__name__}")


def make_trigger(
    fields: Mapping[str, str], time_zone: str, *, end_date: datetime | None = None
) -> CronTrigger:
    """The APScheduler trigger; ValueError for an expression it refuses."""
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger(**fields, timezone=ZoneInfo(time_zone), end_date=end_date)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None


# A schedule whose next time is further away than this never fires, as far as anyone waits.
FIRES_WITHIN = timedelta(days=366 * 10)


def fires(fields: Mapping[str, str], time_zone: str, now: datetime) -> bool:
    """Whether the schedule fires within FIRES_WITHIN of ``now``.

    Asked without a horizon, APScheduler walks to the year 9999 for an expression that
    never fires (`0 0 31 2 *`): seconds of work per check, more on a busy machine.
    """
    return bool(next_fires(make_trigger(fields, time_zone, end_date=now + FIRES_WITHIN), now, 1))


def describe(fields: Mapping[str, str]) -> str:
    """The fields as one line, for listings."""
    return " ".join(f"{k}={v}" for k, v in fields.items())


def latest_fire(trigger: CronTrigger, now: datetime, *, lookback: timedelta = LOOKBACK) -> datetime | None:
    """The last time ``trigger`` fired at or before ``now``; None if not within ``lookback``.

    Looks back in doubling steps, then walks forward: a few dozen trigger
    evaluations even for a schedule that fires every second.
    """
    oldest = trigger.get_next_fire_time(None, now - lookback)
    if oldest is None or oldest > now:
        return None
    step = timedelta(seconds=1)
    while step <= lookback * 2:
        first = trigger.get_next_fire_time(None, now - min(step, lookback))
        if first is not None and first <= now:
            fire: datetime = first
            while True:
                nxt = trigger.get_next_fire_time(None, fire + timedelta(microseconds=1))
                if nxt is None or nxt > now:
                    return fire
                fire = nxt
        step *= 2
    return None


def next_fires(trigger: CronTrigger, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` times ``trigger`` fires after ``now``."""
    out: list[datetime] = []
    start = now + timedelta(microseconds=1)
    while len(out) < count:
        fire = trigger.get_next_fire_time(None, start)
        if fire is None:
            break
        out.append(fire)
        start = fire + timedelta(microseconds=1)
    return out


def _crontab_days(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday, names, ranges, steps) as APScheduler day names."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, slash, step_text = part.partition("/")
        if slash and not step_text.isdigit():
            raise ValueError(f"day-of-week step {step_text!r} in {field!r} is not a number")
        step = int(step_text) if slash else 1
        if step < 1:
            raise ValueError(f"day-of-week step in {field!r} must be >= 1")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            low_text, high_text = span.split("-", 1)
            low, high = _day(low_text, field), _day(high_text, field)
            if high < low:
                raise ValueError(f"day-of-week range {span!r} in {field!r} runs backwards")
        else:
            low = _day(span, field)
            high = 6 if slash else low
        days.update(d % 7 for d in range(low, high + 1, step))
    return ",".join(_DAYS[d] for d in sorted(days))


def _day(text: str, field: str) -> int:
    token = text.strip().lower()
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token[:3] in _DAYS and len(token) == 3:
        return _DAYS.index(token)
    raise ValueError(f"day of week {text!r} in {field!r}: use 0-7 (0 and 7 are Sunday) or sun-sat")
