"""Timer schedules read as the Functions host reads them (devhost/timers/schedule.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devhost.timers.schedule import (
    ConstantSchedule,
    CronSchedule,
    ScheduleError,
    host_time_zone,
    parse_schedule,
    parse_timespan,
)

UTC_ZONE = ZoneInfo("UTC")
START = datetime(2026, 3, 2, 10, 2, 30, tzinfo=UTC)  # a Monday


def _occurrences(expression: str, count: int = 3, settings: dict[str, str] | None = None):
    schedule = parse_schedule("job", expression, settings or {}, UTC_ZONE)
    found, moment = [], START
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment)
    return found


def test_six_fields_put_seconds_first():
    """'*/20 * * * * *' is every 20 seconds, '0 */5 * * * *' every five minutes."""
    assert _occurrences("*/20 * * * * *") == [
        START.replace(second=40),
        START.replace(minute=3, second=0),
        START.replace(minute=3, second=20),
    ]
    assert _occurrences("0 */5 * * * *", 2) == [
        START.replace(minute=5, second=0),
        START.replace(minute=10, second=0),
    ]


def test_five_fields_have_no_seconds():
    """A classic five-field expression runs at second 0, as NCrontab reads it."""
    assert _occurrences("30 9 * * *", 2) == [
        datetime(2026, 3, 2, 9, 30, tzinfo=UTC) + timedelta(days=1),
        datetime(2026, 3, 2, 9, 30, tzinfo=UTC) + timedelta(days=2),
    ]


def test_day_of_month_and_day_of_week_must_both_match():
    """NCrontab ANDs the two day fields (classic cron ORs them): Friday the 13th only."""
    fridays_13th = _occurrences("0 0 0 13 * Fri", 2)

    assert fridays_13th == [datetime(2026, 3, 13, tzinfo=UTC), datetime(2026, 11, 13, tzinfo=UTC)]


def test_settings_fill_the_schedule():
    """'%RETENTION_SCHEDULE%' is read from the settings, as the host's name resolver does."""
    settings = {"RETENTION_SCHEDULE": "0 0 3 * * *"}

    assert _occurrences("%RETENTION_SCHEDULE%", 1, settings) == [
        datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    ]


def test_a_missing_setting_is_named():
    with pytest.raises(ScheduleError, match="setting RETENTION_SCHEDULE it names is not set"):
        parse_schedule("purge", "%RETENTION_SCHEDULE%", {}, UTC_ZONE)


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("00:05:00", timedelta(minutes=5)),
        ("01:30", timedelta(hours=1, minutes=30)),
        ("1.02:03:04.5", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=500)),
        ("2", timedelta(days=2)),  # a bare number is days in .NET
    ],
)
def test_timespans_are_constant_schedules(text, interval):
    schedule = parse_schedule("job", text, {}, UTC_ZONE)

    assert schedule == ConstantSchedule(interval)
    assert schedule.next_after(START) == START + interval


@pytest.mark.parametrize("text", ["24:00:00", "00:60", "1:2:3:4", "soon", ""])
def test_text_that_is_not_a_timespan(text):
    assert parse_timespan(text) is None


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 12 L * *",  # Quartz's last day: croniter reads it, NCrontab does not
        "0 0 12 ? * MON#2",
        "H 0 * * * *",
        "0 0 * * *  * *",
        "every five minutes",
        "00:00:00",
    ],
)
def test_what_the_host_refuses_is_refused(expression):
    with pytest.raises(ScheduleError, match="not a valid NCRONTAB expression or TimeSpan"):
        parse_schedule("job", expression, {}, UTC_ZONE)


def test_sub_minute_schedules_are_not_monitored():
    """TimerSchedule.ShouldDisableScheduleMonitor: X * * * * * twice a minute, or < 1 minute."""
    assert parse_schedule("j", "*/10 * * * * *", {}, UTC_ZONE).more_than_once_a_minute(START)
    assert not parse_schedule("j", "0 * * * * *", {}, UTC_ZONE).more_than_once_a_minute(START)
    assert not parse_schedule("j", "0 */5 * * * *", {}, UTC_ZONE).more_than_once_a_minute(START)
    assert parse_schedule("j", "00:00:30", {}, UTC_ZONE).more_than_once_a_minute(START)


def test_website_time_zone_moves_the_occurrences():
    """WEBSITE_TIME_ZONE sets the zone schedules are read in (UTC otherwise)."""
    zone = host_time_zone({"WEBSITE_TIME_ZONE": "America/New_York"})
    schedule = CronSchedule("0 0 9 * * *", zone)

    assert schedule.next_after(START) == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="not a time zone name"):
        host_time_zone({"WEBSITE_TIME_ZONE": "Mars/Olympus"})
