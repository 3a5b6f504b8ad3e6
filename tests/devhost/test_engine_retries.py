"""``call_activity_with_retry``: host-side retries with DTFx's history shape (§3.6)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from devhost.engine.history import EventType, parse_time
from devhost.testing import DurableTestHost
from tests.devhost.apps import failures
from tests.devhost.apps.failures import INDEX, RETRY_INTERVAL_MS

RETRY_INTERVAL = timedelta(milliseconds=RETRY_INTERVAL_MS)


@pytest.fixture
async def host() -> AsyncIterator[DurableTestHost]:
    async with DurableTestHost(index=INDEX) as test_host:
        yield test_host


def job(max_attempts: int, succeed_on: int) -> dict[str, Any]:
    return {"key": uuid.uuid4().hex, "max_attempts": max_attempts, "succeed_on": succeed_on}


def summary(history: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(event type, sequence number) of the scheduling and completion events."""
    rows = []
    for event in history:
        event_type = EventType(event["EventType"])
        if event_type in (EventType.TaskScheduled, EventType.TimerCreated):
            rows.append((event_type.name, event["EventId"]))
        elif event_type in (EventType.TaskCompleted, EventType.TaskFailed):
            rows.append((event_type.name, event["TaskScheduledId"]))
        elif event_type == EventType.TimerFired:
            rows.append((event_type.name, event["TimerId"]))
        elif event_type == EventType.ExecutionCompleted:
            rows.append((event_type.name, event["EventId"]))
    return rows


def timer_delays(history: list[dict[str, Any]]) -> list[timedelta]:
    """For each TimerCreated: FireAt minus the orchestration time of its episode."""
    delays = []
    episode_time = None
    for event in history:
        if event["EventType"] == EventType.OrchestratorStarted:
            episode_time = parse_time(event["Timestamp"])
        elif event["EventType"] == EventType.TimerCreated:
            assert episode_time is not None
            delays.append(parse_time(event["FireAt"]) - episode_time)
    return delays


async def test_retry_succeeds_on_the_third_attempt(host: DurableTestHost) -> None:
    work = job(max_attempts=3, succeed_on=3)
    status = await host.run("with_retry", work)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == 3
    assert failures.attempts[work["key"]] == 3


async def test_retry_history_interleaves_failures_and_timers(host: DurableTestHost) -> None:
    instance_id = await host.start("with_retry", job(max_attempts=3, succeed_on=3))
    await host.wait(instance_id)

    assert summary(host.engine.instances[instance_id].history) == [
        ("TaskScheduled", 0),
        ("TaskFailed", 0),
        ("TimerCreated", 1),
        ("TimerFired", 1),
        ("TaskScheduled", 2),
        ("TaskFailed", 2),
        ("TimerCreated", 3),
        ("TimerFired", 3),
        ("TaskScheduled", 4),
        ("TaskCompleted", 4),
        ("ExecutionCompleted", 5),
    ]


async def test_retry_timers_wait_the_first_retry_interval_on_virtual_time(
    host: DurableTestHost,
) -> None:
    started = time.monotonic()
    instance_id = await host.start("with_retry", job(max_attempts=3, succeed_on=3))
    await host.wait(instance_id)
    elapsed = time.monotonic() - started

    history = host.engine.instances[instance_id].history
    assert timer_delays(history) == [RETRY_INTERVAL, RETRY_INTERVAL]
    fired = [e for e in history if e["EventType"] == EventType.TimerFired]
    scheduled = [e for e in history if e["EventType"] == EventType.TaskScheduled]
    # Each retry is scheduled no earlier than its timer's due time...
    for timer, retry in zip(fired, scheduled[1:], strict=True):
        assert parse_time(retry["Timestamp"]) >= parse_time(timer["FireAt"])
    # ...yet the virtual clock makes the 10 s of backoff take no real time.
    assert elapsed < 2


async def test_exhausted_retries_fail_with_the_last_error(host: DurableTestHost) -> None:
    work = job(max_attempts=2, succeed_on=99)
    status = await host.run("with_retry", work)

    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "Orchestrator function 'with_retry' failed: "
        "Activity function 'flaky' failed:  RuntimeError: attempt 2 failed"
    )
    assert failures.attempts[work["key"]] == 2


async def test_exhausted_retries_can_be_caught(host: DurableTestHost) -> None:
    status = await host.run("with_retry_caught", job(max_attempts=2, succeed_on=99))

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {
        "caught": "Activity function 'flaky' failed:  RuntimeError: attempt 2 failed"
    }


async def test_last_failed_attempt_is_followed_by_a_zero_delay_timer(
    host: DurableTestHost,
) -> None:
    instance_id = await host.start("with_retry", job(max_attempts=2, succeed_on=99))
    await host.wait(instance_id)

    history = host.engine.instances[instance_id].history
    assert summary(history) == [
        ("TaskScheduled", 0),
        ("TaskFailed", 0),
        ("TimerCreated", 1),
        ("TimerFired", 1),
        ("TaskScheduled", 2),
        ("TaskFailed", 2),
        ("TimerCreated", 3),
        ("TimerFired", 3),
        ("ExecutionCompleted", 4),
    ]
    assert timer_delays(history) == [RETRY_INTERVAL, timedelta(0)]


@pytest.mark.parametrize("child_id", [None, "the-child"])
async def test_sub_orchestration_retry_starts_a_new_child_per_attempt(
    host: DurableTestHost, child_id: str | None
) -> None:
    work = {**job(max_attempts=3, succeed_on=3), "child_id": child_id}
    instance_id = await host.start("retries_child", work)
    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == 3
    history = host.engine.instances[instance_id].history
    created = [
        e["InstanceId"]
        for e in history
        if e["EventType"] == EventType.SubOrchestrationInstanceCreated
    ]
    failed = [e for e in history if e["EventType"] == EventType.SubOrchestrationInstanceFailed]
    assert len(created) == 3 and len(failed) == 2
    if child_id is None:
        execution_id = history[1]["OrchestrationInstance"]["ExecutionId"]
        assert created == [f"{execution_id}:{seq}" for seq in (0, 2, 4)]
    else:
        assert created == [child_id] * 3
