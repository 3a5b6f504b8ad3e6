"""The retention job's settings and choices, without a host (blueprints/retention/policy.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from blueprints.retention.policy import (
    RetentionSettingError,
    cutoff,
    is_expired,
    retention_days,
    split_point,
)
from blueprints.retention.purge import run_time
from devhost.timers.scheduler import timer_request

NOW = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)


def test_retention_days_defaults_to_30_and_takes_fractions():
    assert retention_days({}) == 30
    assert retention_days({"WORKFLOW_RETENTION_DAYS": "0.5"}) == 0.5


@pytest.mark.parametrize("value", ["0", "-3", "thirty", "nan", "inf"])
def test_a_bad_retention_is_refused_naming_the_setting(value):
    with pytest.raises(RetentionSettingError, match="WORKFLOW_RETENTION_DAYS is"):
        retention_days({"WORKFLOW_RETENTION_DAYS": value})


def test_only_finished_instances_last_updated_before_the_cutoff_expire():
    before = cutoff(NOW, 7)
    old = before - timedelta(seconds=1)

    assert is_expired("Completed", old, before)
    assert is_expired("Failed", old, before)
    assert is_expired("Terminated", old, before)
    assert not is_expired("Completed", before + timedelta(seconds=1), before)
    for running in ("Running", "Pending", "Suspended", "ContinuedAsNew"):
        assert not is_expired(running, old, before)


SECOND = timedelta(seconds=1)


def test_a_full_listing_is_split_where_it_divides_the_listed_instances_most_evenly():
    """Listed times are whole seconds (an instance listed at t was created in [t, t + 1 s)):
    40 at t, 60 at t + 5 s split at the end of t's second, 40 before and 60 after."""
    end = NOW + 10 * SECOND
    listed = [NOW] * 40 + [NOW + 5 * SECOND] * 60

    assert split_point(None, end, listed) == NOW + SECOND
    assert split_point(NOW - 3 * SECOND, end, listed) == NOW + SECOND


def test_instances_listed_in_one_second_narrow_the_range_to_that_second_then_stay_as_they_are():
    """All listed at t: the range is cut at t's start or end while either lies strictly inside
    it, so each part is narrower; the range of t's second alone cannot be split."""
    listed = [NOW] * 100

    assert split_point(None, NOW + 9 * SECOND, listed) == NOW
    assert split_point(NOW, NOW + 9 * SECOND, listed) == NOW + SECOND
    assert split_point(NOW - 9 * SECOND, NOW + SECOND, listed) == NOW
    assert split_point(NOW, NOW + SECOND, listed) is None
    assert split_point(NOW, NOW + SECOND / 2, listed) is None


def test_a_run_stands_for_its_occurrence(tmp_path):
    """The host's TimerRequest names the occurrence (Next); without a status, the wall clock."""
    from devhost.app.loader import index_app
    from devhost.timers.monitor import ScheduleStatus
    from devhost.timers.scheduler import timer_functions
    from function_app import app

    timer = next(
        t
        for t in timer_functions(
            index_app(app), {"WORKFLOW_RETENTION_SCHEDULE": "0 0 3 * * *"}, NOW
        )
        if t.name == "purge_old_instances"
    )
    status = ScheduleStatus(last=NOW - timedelta(days=1), next=NOW, last_updated=NOW)

    assert run_time(timer_request(timer, status, past_due=False)) == NOW
    before = datetime.now(UTC)
    assert before <= run_time(timer_request(timer, None, past_due=False)) <= datetime.now(UTC)
