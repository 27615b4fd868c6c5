"""Cron expressions: crontab meaning on APScheduler, time zones, the last time a schedule fired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tuning_service.sweeps.nightly.cron import cron_fields, latest_fire, make_trigger, next_fires

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "weekdays"),
    [
        ("0 2 * * 0", {6}),  # cron: 0 is Sunday (APScheduler alone would read Monday)
        ("0 2 * * 7", {6}),
        ("0 2 * * 1-5", {0, 1, 2, 3, 4}),
        ("0 2 * * 5-7", {4, 5, 6}),
        ("0 2 * * */2", {6, 1, 3, 5}),  # Sunday, Tuesday, Thursday, Saturday
        ("0 2 * * sat,sun", {5, 6}),
    ],
)
def test_crontab_days_of_week_mean_what_cron_means(expression, weekdays):
    trigger = make_trigger(cron_fields(expression), "UTC")
    fires = next_fires(trigger, MONDAY_NOON, 14)
    assert {f.weekday() for f in fires} == weekdays
    assert all((f.hour, f.minute) == (2, 0) for f in fires)


def test_time_zone_and_macros():
    trigger = make_trigger(cron_fields("@daily"), "America/New_York")
    (first,) = next_fires(trigger, MONDAY_NOON, 1)
    assert first.utcoffset() == timedelta(hours=-5)
    assert first.astimezone(ZoneInfo("America/New_York")).hour == 0


def test_seconds_through_the_mapping_form():
    trigger = make_trigger(cron_fields({"second": "*/10"}), "UTC")
    assert next_fires(trigger, MONDAY_NOON, 2) == [
        MONDAY_NOON + timedelta(seconds=10),
        MONDAY_NOON + timedelta(seconds=20),
    ]


def test_latest_fire_is_the_last_time_at_or_before_now():
    nightly = make_trigger(cron_fields("30 2 * * *"), "UTC")
    assert latest_fire(nightly, MONDAY_NOON) == datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
    assert latest_fire(nightly, datetime(2026, 11, 23, 2, 30, tzinfo=UTC)) == datetime(
        2026, 11, 23, 2, 30, tzinfo=UTC
    )
    yearly = make_trigger(cron_fields("@yearly"), "UTC")
    assert latest_fire(yearly, MONDAY_NOON) == datetime(2026, 1, 1, tzinfo=UTC)
    fast = make_trigger(cron_fields({"second": "*/7"}), "UTC")
    assert latest_fire(fast, MONDAY_NOON + timedelta(seconds=20)) == MONDAY_NOON + timedelta(seconds=14)


def test_a_schedule_that_never_fires_has_no_latest_time():
    never = make_trigger(cron_fields("0 0 30 2 *"), "UTC")
    assert latest_fire(never, MONDAY_NOON) is None
    assert next_fires(never, MONDAY_NOON, 1) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0 2 1 * 1", "restricts both day-of-month and day-of-week"),
        ("0 2 * * 8", "use 0-7"),
        ("0 2 * * fri-mon", "runs backwards"),
        ({"hour": True}, "must be a string or an integer"),
        ({}, "needs at least one of"),
        (3, "expected a crontab string or a mapping"),
    ],
)
def test_bad_expressions_say_why(value, message):
    with pytest.raises(ValueError, match=message):
        make_trigger(cron_fields(value), "UTC")
