"""Timer trigger schedules as the Functions host reads them (azure-webjobs-sdk-extensions,
``TimerSchedule.Create``, ``CronSchedule`` and ``ConstantSchedule``).

A schedule is the binding's ``schedule`` with ``%Setting%`` references replaced by the app's
settings. It is an NCRONTAB expression when NCrontab parses it, with six fields (seconds first)
or five (no seconds, as in classic cron), else a .NET ``TimeSpan`` (``hh:mm:ss``, ``d.hh:mm:ss``
or a whole number of days), else the host refuses the function. Occurrences are computed in the
host's time zone: UTC, as on Azure, unless ``WEBSITE_TIME_ZONE`` names another (an IANA name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_SETTING_REFERENCE = re.compile(r"%([^%]+)%")
# A field of NCRONTAB: numbers, ranges, steps, lists, '*' and month or day names. croniter
# also reads Quartz-style 'L', '#', '?' and Jenkins-style 'H', which NCrontab refuses.
_NCRONTAB_FIELD = re.compile(r"^[0-9*/,\-]*(?:[A-Za-z]{3}[0-9*/,\-]*)*$")
# .NET TimeSpan.TryParse's invariant forms: [-]d, [-][d.]hh:mm[:ss[.fffffff]].
_TIMESPAN = re.compile(
    r"^\s*(?P<sign>-)?(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2})"
    r"(?::(?P<seconds>\d{1,2})(?:\.(?P<fraction>\d{1,7}))?)?\s*$"
)
_DAYS = re.compile(r"^\s*(?P<sign>-)?(?P<days>\d{1,8})\s*$")
TIME_ZONE_SETTING = "WEBSITE_TIME_ZONE"


class ScheduleError(Exception):
    """A timer function's schedule cannot be used; the message names the function and why."""


def resolve_settings(expression: str, settings: dict[str, str]) -> str:
    """Replace every ``%Name%`` with the setting's value, as the host's name resolver does.

    Raises
    ------
    KeyError
        With the name of the first setting that is not set.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if not settings.get(name):
            raise KeyError(name)
        return settings[name]

    return _SETTING_REFERENCE.sub(value, expression)


def parse_timespan(text: str) -> timedelta | None:
    """The interval a .NET ``TimeSpan`` string names, or None when it is not one.

    Hand-written because no Python library reads .NET's TimeSpan format; it accepts the
    invariant forms ``TimeSpan.TryParse`` accepts (``1.02:03:04.5``, ``02:03``, ``7``).
    """
    found = _DAYS.match(text)
    if found:
        days = int(found["days"])
        return -timedelta(days=days) if found["sign"] else timedelta(days=days)
    found = _TIMESPAN.match(text)
    if found is None:
        return None
    hours, minutes = int(found["hours"]), int(found["minutes"])
    seconds = int(found["seconds"] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    interval = timedelta(
        days=int(found["days"] or 0),
        hours=hours,
        minutes=minutes,
        seconds=seconds,
        microseconds=int((found["fraction"] or "0").ljust(7, "0")) // 10,
    )
    return -interval if found["sign"] else interval


@dataclass(frozen=True)
class CronSchedule:
    """An NCRONTAB schedule.

    NCRONTAB's six fields are ``second minute hour day month day-of-week``: croniter reads the
    same order with ``second_at_beginning=True`` (its default puts seconds last). NCrontab
    requires the day of the month and the day of the week both to match when both are given
    (``day_or=False``), where classic cron accepts either. Five fields have no seconds (0).
    """

    expression: str
    zone: ZoneInfo
    adjust_for_dst = True

    @property
    def fields(self) -> list[str]:
        return self.expression.split()

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (in the schedule's zone)."""
        local = moment.astimezone(self.zone)
        found = croniter(
            self.expression,
            local,
            day_or=False,
            second_at_beginning=len(self.fields) == 6,
        ).get_next(datetime)
        assert isinstance(found, datetime)
        return found

    def more_than_once_a_minute(self, now: datetime) -> bool:
        """``ShouldDisableScheduleMonitor``: ``X * * * * *`` occurring twice within a minute."""
        fields = self.fields
        if len(fields) != 6 or any(field != "*" for field in fields[1:]):
            return False
        first = self.next_after(now)
        return self.next_after(first) <= now + timedelta(minutes=1)

    def __str__(self) -> str:
        return self.expression


@dataclass(frozen=True)
class ConstantSchedule:
    """A fixed interval from the previous occurrence (a ``TimeSpan`` schedule)."""

    interval: timedelta
    adjust_for_dst = False

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval

    def more_than_once_a_minute(self, now: datetime) -> bool:
        return self.interval < timedelta(minutes=1)

    def __str__(self) -> str:
        return f"every {self.interval}"


Schedule = CronSchedule | ConstantSchedule


def _is_ncrontab(expression: str) -> bool:
    fields = expression.split()
    if len(fields) not in (5, 6) or not all(_NCRONTAB_FIELD.match(f) for f in fields):
        return False
    return bool(croniter.is_valid(expression, second_at_beginning=len(fields) == 6))


def host_time_zone(settings: dict[str, str]) -> ZoneInfo:
    """The zone schedules are computed in: ``WEBSITE_TIME_ZONE`` or UTC."""
    name = (settings.get(TIME_ZONE_SETTING) or "UTC").strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"{TIME_ZONE_SETTING} is {name!r}, which is not a time zone name: use an IANA "
            "name such as Europe/London, or remove the setting for UTC."
        ) from None


def parse_schedule(
    function: str, expression: str, settings: dict[str, str], zone: ZoneInfo
) -> Schedule:
    """The schedule of one timer function (``TimerSchedule.Create``).

    Raises
    ------
    ScheduleError
        When a ``%Setting%`` it names is not set, or it is neither NCRONTAB nor a TimeSpan.
    """
    try:
        resolved = resolve_settings(expression, settings)
    except KeyError as missing:
        raise ScheduleError(
            f"The schedule of timer function '{function}' is {expression!r}, and the setting "
            f"{missing.args[0]} it names is not set: add it to local.settings.json Values or "
            "the environment."
        ) from None
    if _is_ncrontab(resolved):
        return CronSchedule(" ".join(resolved.split()), zone)
    interval = parse_timespan(resolved)
    if interval is not None and interval > timedelta(0):
        return ConstantSchedule(interval)
    shown = repr(resolved) if resolved == expression else f"{resolved!r} (from {expression!r})"
    raise ScheduleError(
        f"The schedule of timer function '{function}', {shown}, is not a valid NCRONTAB "
        "expression or TimeSpan: use six fields, seconds first ('0 */5 * * * *' is every five "
        "minutes), or hh:mm:ss."
    )
