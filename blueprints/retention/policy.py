"""What the retention job keeps and removes, without any host: the settings and the choice.

A finished instance (Completed, Failed, Terminated) goes once it was created *and* last
updated more than ``WORKFLOW_RETENTION_DAYS`` days before the run; running, pending and
suspended instances are never touched. The purge removes what the durable runtime keeps for an
instance (its status row, history rows and large-payload blobs); the workflows' business
records (read models, ledgers, archives, reports, notifications) live in the app's own tables
and blobs (``blueprints.app_storage``) and are kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

RETENTION_DAYS_SETTING = "WORKFLOW_RETENTION_DAYS"
# The timer's schedule: an NCRONTAB expression (seconds first) or a TimeSpan, read by the host.
RETENTION_SCHEDULE_SETTING = "WORKFLOW_RETENTION_SCHEDULE"
DEFAULT_RETENTION_DAYS = 30.0
FINISHED_STATUSES = ("Completed", "Failed", "Terminated")
# One page is what the host's list API returns without a continuation token (its default
# page size); pages per run bound how long one run takes, the next run goes on.
PAGE_SIZE = 100
MAX_PAGES_PER_RUN = 50
# The status API gives times to the second (``ToString("s")``): a listed instance created at
# ``t`` was created in ``[t, t + 1 s)``.
CREATED_TIME_PRECISION = timedelta(seconds=1)


class RetentionSettingError(ValueError):
    """WORKFLOW_RETENTION_DAYS is not a number of days above zero."""


def retention_days(environ: dict[str, str] | None = None) -> float:
    """``WORKFLOW_RETENTION_DAYS`` (30 when unset); fractions of a day are allowed."""
    text = (environ if environ is not None else os.environ).get(RETENTION_DAYS_SETTING, "")
    if not text.strip():
        return DEFAULT_RETENTION_DAYS
    try:
        days = float(text)
    except ValueError:
        days = float("nan")
    if not days > 0 or days == float("inf"):
        raise RetentionSettingError(
            f"{RETENTION_DAYS_SETTING} is {text!r}: set a number of days above 0 (30 when unset)."
        )
    return days


def cutoff(as_of: datetime, days: float) -> datetime:
    """Instances finished before this moment are old enough to go."""
    return as_of - timedelta(days=days)


def is_expired(runtime_status: str, last_updated: datetime | None, before: datetime) -> bool:
    """Whether a listed instance is finished and was last updated before ``before``."""
    return (
        runtime_status in FINISHED_STATUSES and last_updated is not None and last_updated < before
    )


def split_point(start: datetime | None, end: datetime, created: list[datetime]) -> datetime | None:
    """Where to split the created-time range ``[start, end]`` (``start`` None: from the
    first instance) whose listing came back full, given the created times the listing showed.

    The listing is the first page in instance-ID order, a sample of the range: the point
    chosen splits that sample most evenly, among the listed times and the ends of their seconds
    (``CREATED_TIME_PRECISION``) that lie strictly inside the range, so both parts are
    narrower than it. None when there is no such point: every listed instance was created in
    the range's first second or its last one, and the range is listed as it is.
    """
    candidates = sorted(
        {
            point
            for time in created
            for point in (time, time + CREATED_TIME_PRECISION)
            if (start is None or point > start) and point < end
        }
    )
    if not candidates:
        return None

    def evenness(point: datetime) -> int:
        # An instance listed at t was created in [t, t + 1 s): those listed before the point
        # fall in the first part, the others in the second.
        before = sum(1 for time in created if time < point)
        return min(before, len(created) - before)

    return max(candidates, key=evenness)


@dataclass
class PurgeReport:
    """What one run removed, for its log line."""

    cutoff: datetime
    instances: int = 0
    pages: int = 0
    by_name: dict[str, int] = field(default_factory=dict)
    entities: int = 0
    kept_recent: int = 0
    more_left: bool = False

    def add(self, name: str) -> None:
        self.instances += 1
        self.by_name[name] = self.by_name.get(name, 0) + 1

    def summary(self) -> str:
        names = ", ".join(f"{name} {count}" for name, count in sorted(self.by_name.items()))
        text = (
            f"Retention: removed {self.instances} finished instance(s) last updated before "
            f"{self.cutoff.isoformat()} in {self.pages} page(s)"
            + (f" ({names})" if names else "")
            + f", cleared {self.entities} per-instance entit{'y' if self.entities == 1 else 'ies'}"
        )
        if self.kept_recent:
            text += f"; kept {self.kept_recent} created earlier but finished since"
        if self.more_left:
            text += "; more remain for the next run"
        return text + "."
