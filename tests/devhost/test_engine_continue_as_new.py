"""``continue_as_new`` and custom status."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from devhost.engine.history import EventType
from devhost.store.base import Checkpoint
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost
from tests.devhost.apps.waiting import INDEX
from tests.durability.crash import life_that_crashes


@pytest.fixture
async def host() -> AsyncIterator[DurableTestHost]:
    async with DurableTestHost(index=INDEX) as test_host:
        yield test_host


def history_of(host: DurableTestHost, instance_id: str) -> list[dict[str, Any]]:
    return host.engine.instances[instance_id].history


async def current(host: DurableTestHost, instance_id: str) -> dict[str, Any]:
    status = await host.status(instance_id)
    assert status is not None
    return status


async def test_continue_as_new_starts_a_new_generation_of_the_same_instance(
    host: DurableTestHost,
) -> None:
    instance_id = await host.start("collect")
    await host.idle()
    first_execution = host.engine.instances[instance_id].execution_id

    await host.raise_event(instance_id, "Add", 1, as_client=False)
    await host.idle()

    status = await current(host, instance_id)
    assert status["runtimeStatus"] == "Running"
    assert status["customStatus"] == {"generation": 1}
    history = history_of(host, instance_id)
    started = [e for e in history if e["EventType"] == EventType.ExecutionStarted]
    assert len(started) == 1  # the history starts over
    assert started[0]["OrchestrationInstance"]["ExecutionId"] != first_execution
    assert started[0]["Generation"] == 1
    assert not any(e["EventType"] == EventType.EventRaised for e in history)


async def test_continue_as_new_passes_the_new_input(host: DurableTestHost) -> None:
    instance_id = await host.start("collect")
    for value in (1, 2, 3):
        await host.idle()
        await host.raise_event(instance_id, "Add", value, as_client=False)

    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == [1, 2, 3]
    # Stored like a client-started input: a JSON string holding the SDK's JSON text.
    assert status["input"] == '{"values": [1, 2]}'


async def test_continue_as_new_with_a_number_as_input(host: DurableTestHost) -> None:
    status = await host.run("countdown", 3)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "liftoff after generation 0"
    assert status["input"] == "0"
    assert host.engine.instances[status["instanceId"]].generation == 3


async def test_events_raised_during_the_last_episode_are_carried_over(
    host: DurableTestHost,
) -> None:
    instance_id = await host.start("collect")
    await host.idle()

    # All three land in one episode: the first ends the generation, the others carry over.
    for value in (1, 2, 3):
        await host.raise_event(instance_id, "Add", value, as_client=False)
    status = await host.wait(instance_id)

    assert status["output"] == [1, 2, 3]
    history = history_of(host, instance_id)
    types = [EventType(e["EventType"]) for e in history]
    assert types[:3] == [
        EventType.OrchestratorStarted,
        EventType.ExecutionStarted,
        EventType.EventRaised,
    ]
    assert history[2]["Input"] == "3"


async def test_custom_status_follows_the_latest_replay(host: DurableTestHost) -> None:
    instance_id = await host.start("custom_status_stages")
    await host.idle()
    assert (await current(host, instance_id))["customStatus"] == {"stage": "waiting"}

    await host.raise_event(instance_id, "Next")
    await host.idle()
    assert (await current(host, instance_id))["customStatus"] == {"stage": "working"}

    await host.raise_event(instance_id, "Next")
    status = await host.wait(instance_id)
    assert status["customStatus"] == {"stage": "working"}


@pytest.mark.parametrize("value", [0, "", False, {}, []])
async def test_falsy_custom_status_is_dropped(host: DurableTestHost, value: Any) -> None:
    instance_id = await host.start("falsy_custom_status", value)
    await host.idle()

    assert (await current(host, instance_id))["customStatus"] is None


@pytest.mark.parametrize("value", [1, "ready", True, {"a": 1}, [0]])
async def test_truthy_custom_status_is_shown(host: DurableTestHost, value: Any) -> None:
    instance_id = await host.start("falsy_custom_status", value)
    await host.idle()

    assert (await current(host, instance_id))["customStatus"] == value


def _holds_a_later_generation(checkpoint: Checkpoint) -> bool:
    return any(
        e["EventType"] == EventType.ExecutionStarted and e.get("Generation", 0) > 0
        for e in checkpoint.history
    )


async def test_a_crash_between_generations_loses_neither_the_start_nor_a_carried_event() -> None:
    store = MemoryStore("continued")
    # The process dies right after the first checkpoint of a later generation: the one that
    # consumed both events (one ended the first generation, one was carried over).
    async with life_that_crashes(INDEX, store, crash_after=_holds_a_later_generation) as first:
        instance_id = await first.engine.start_new("collect", "col", None)
        # Both land in one episode: 1 ends the first generation, 2 is carried over to the next.
        for value in (1, 2):
            await first.engine.raise_event(instance_id, "Add", json.dumps(value))
        deadline = time.monotonic() + 60
        while not first.point.crashed:
            assert time.monotonic() < deadline, "no generation ended"
            await asyncio.sleep(0.001)
    assert [m.body["kind"] for m in await store.read_messages()] == ["start", "event", "event"]

    async with DurableTestHost(index=INDEX, store=store, task_hub="continued") as second:
        await second.idle()
        await second.raise_event(instance_id, "Add", 3, as_client=False)
        status = await second.wait(instance_id)

    assert status["output"] == [1, 2, 3]
