"""The retention job's settings and choices, without a host (blueprints/retention/policy.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from blueprints.retention.policy import (
    RetentionSettingError,
    cutoff,
    is_expired,
    retention_days,
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
