"""Durable timers on virtual time: long timers, races with events, the open-task rule."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from devhost.app.loader import FunctionIndex
from devhost.engine.history import EventType, parse_time
from devhost.testing import DurableTestHost
from tests.devhost.apps import counters, sequences
from tests.devhost.apps.waiting import APPROVAL_TIMEOUT, INDEX


@pytest.fixture
async def host() -> AsyncIterator[DurableTestHost]:
    async with DurableTestHost(index=INDEX) as test_host:
        yield test_host


@pytest.fixture
async def manual_host() -> AsyncIterator[DurableTestHost]:
    """Timers fire only when the test calls ``advance()``."""
    async with DurableTestHost(index=INDEX, virtual_time="manual") as test_host:
        yield test_host


def events_of(host: DurableTestHost, instance_id: str, event_type: EventType) -> list[dict]:
    return [e for e in host.engine.instances[instance_id].history if e["EventType"] == event_type]


async def runtime_status(host: DurableTestHost, instance_id: str) -> Any:
    status = await host.status(instance_id)
    assert status is not None
    return status["runtimeStatus"]


async def test_30_day_timer_completes_in_well_under_a_second(host: DurableTestHost) -> None:
    started = time.monotonic()
    status = await host.run("sleep_30_days")

    assert time.monotonic() - started < 1
    assert status["runtimeStatus"] == "Completed"
    before = datetime.fromisoformat(status["output"]["before"])
    after = datetime.fromisoformat(status["output"]["after"])
    assert timedelta(days=30) <= after - before < timedelta(days=30, minutes=1)


async def test_long_timer_is_split_into_legs_ending_at_the_due_time(
    host: DurableTestHost,
) -> None:
    instance_id = await host.start("sleep_30_days")
    status = await host.wait(instance_id)

    before = datetime.fromisoformat(status["output"]["before"])
    fire_times = [
        parse_time(e["FireAt"]) for e in events_of(host, instance_id, EventType.TimerCreated)
    ]
    # The SDK splits timers longer than maximumShortTimerDuration (6 days) into 3-day legs.
    assert len(fire_times) > 1
    assert fire_times == sorted(fire_times)
    assert all(b - a <= timedelta(days=6) for a, b in zip(fire_times, fire_times[1:], strict=False))
    assert fire_times[-1] == before + timedelta(days=30)


async def test_timer_wins_the_race_when_no_event_comes(host: DurableTestHost) -> None:
    instance_id = await host.start("approval")
    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"approved": None}
    assert len(events_of(host, instance_id, EventType.TimerFired)) == 1


async def test_event_wins_the_race_and_the_cancelled_timer_does_not_block(
    manual_host: DurableTestHost,
) -> None:
    host = manual_host
    instance_id = await host.start("approval")
    await host.idle()
    await host.raise_event(instance_id, "Approve", "yes", as_client=False)

    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"approved": "yes"}
    assert len(events_of(host, instance_id, EventType.TimerCreated)) == 1
    assert events_of(host, instance_id, EventType.TimerFired) == []


async def test_returning_with_an_uncancelled_timer_waits_for_it(
    manual_host: DurableTestHost,
) -> None:
    host = manual_host
    instance_id = await host.start("approval_forgetting_the_timer")
    await host.idle()
    await host.raise_event(instance_id, "Approve", "yes", as_client=False)
    await host.idle()

    # The orchestrator has returned, but its timer is an open task (§3.10).
    assert await runtime_status(host, instance_id) == "Running"

    host.advance(APPROVAL_TIMEOUT)
    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"approved": "yes"}


async def test_manual_time_does_not_fire_timers_by_itself(manual_host: DurableTestHost) -> None:
    host = manual_host
    instance_id = await host.start("approval")
    await host.idle()

    host.advance(APPROVAL_TIMEOUT - timedelta(seconds=1))
    await host.idle()
    assert await runtime_status(host, instance_id) == "Running"

    host.advance(timedelta(seconds=1))
    status = await host.wait(instance_id)
    assert status["output"] == {"approved": None}


@pytest.mark.parametrize(
    ("index", "name", "winner"),
    [
        (sequences.INDEX, "child_against_a_deadline", "child"),
        (counters.INDEX, "call_against_a_deadline", "call"),
    ],
    ids=["sub_orchestration", "entity_call"],
)
async def test_virtual_time_waits_for_an_answer_on_its_way(
    index: FunctionIndex, name: str, winner: str
) -> None:
    # A child's end and an entity's answer reach the caller once they are stored; until then
    # the host is not at rest, so virtual time does not jump to the deadline meanwhile.
    async with DurableTestHost(index=index) as test_host:
        for attempt in range(5):
            status = await test_host.run(name, f"k{attempt}")
            assert status["output"] == winner
