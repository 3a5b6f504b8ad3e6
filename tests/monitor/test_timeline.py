"""The instance page's timeline, built from histories the engine really recorded."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from devhost.monitor.timeline import build_timeline
from devhost.testing import DurableTestHost
from tests.devhost.apps import counters, failures
from tests.waiting import DEFAULT_TIMEOUT


async def _timeline(host: DurableTestHost, instance_id: str) -> Any:
    """The timeline of the instance's stored history (a finished child's reaches the store
    with the next group commit, so it is waited for)."""
    deadline = asyncio.get_running_loop().time() + DEFAULT_TIMEOUT
    while (history := await host.store.read_history(instance_id)) is None or not any(
        event["EventType"] == 1 for event in history.events
    ):
        assert asyncio.get_running_loop().time() < deadline, f"no finished history of {instance_id}"
        await asyncio.sleep(0.01)
    return build_timeline(history.events)


def _job(max_attempts: int, succeed_on: int) -> dict[str, Any]:
    return {"key": uuid.uuid4().hex, "max_attempts": max_attempts, "succeed_on": succeed_on}


async def test_retries_are_bars_numbered_by_attempt_with_their_timers() -> None:
    async with DurableTestHost(index=failures.INDEX) as host:
        instance_id = await host.start("with_retry", _job(max_attempts=3, succeed_on=3))
        assert (await host.wait(instance_id))["runtimeStatus"] == "Completed"
        timeline = await _timeline(host, instance_id)
    activities = [bar for bar in timeline.bars if bar.kind == "activity"]
    assert [(bar.name, bar.attempt, bar.outcome) for bar in activities] == [
        ("flaky", 1, "failed"),
        ("flaky", 2, "failed"),
        ("flaky", 3, "completed"),
    ]
    assert "attempt 1 failed" in (activities[0].detail or "")
    assert [bar.kind for bar in timeline.bars].count("timer") == 2
    assert all(bar.end is not None for bar in timeline.bars)
    assert [mark.kind for mark in timeline.marks] == ["started", "completed"]


async def test_a_failure_says_why_on_its_bar_and_on_the_end() -> None:
    async with DurableTestHost(index=failures.INDEX) as host:
        instance_id = await host.start("uncaught_activity_error")
        assert (await host.wait(instance_id))["runtimeStatus"] == "Failed"
        timeline = await _timeline(host, instance_id)
    (bar,) = timeline.bars
    assert (bar.name, bar.outcome) == ("explode", "failed")
    assert "boom" in (bar.detail or "")
    end = timeline.marks[-1]
    assert end.kind == "failed" and "boom" in (end.detail or "")


async def test_a_sub_orchestration_links_child_and_parent() -> None:
    async with DurableTestHost(index=failures.INDEX) as host:
        job = {**_job(max_attempts=1, succeed_on=1), "child_id": "kid-1"}
        instance_id = await host.start("retries_child", job)
        await host.wait(instance_id)
        parent = await _timeline(host, instance_id)
        child = await _timeline(host, "kid-1")
    (bar,) = parent.bars
    assert (bar.kind, bar.name, bar.child_instance_id) == (
        "suborchestration",
        "flaky_child",
        "kid-1",
    )
    assert parent.children == ["kid-1"]
    assert child.parent_instance_id == instance_id


async def test_an_entity_call_is_a_bar_named_by_its_operation() -> None:
    async with DurableTestHost(index=counters.INDEX) as host:
        instance_id = await host.start("add_and_read", "c1")
        await host.wait(instance_id)
        timeline = await _timeline(host, instance_id)
    entity_bars = [bar for bar in timeline.bars if bar.kind == "entity"]
    assert [bar.name for bar in entity_bars] == ["@counter@c1 add", "@counter@c1 add"]
    assert all(bar.outcome == "completed" for bar in entity_bars)
    # The entity's answers close the bars; they are not shown again as raised events.
    assert [mark.kind for mark in timeline.marks] == ["started", "completed"]
