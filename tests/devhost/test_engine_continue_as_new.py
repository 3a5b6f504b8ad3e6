"""``continue_as_new`` and custom status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from devhost.engine.history import EventType
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost
from tests.devhost.apps.waiting import INDEX


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


async def test_a_crash_between_generations_loses_neither_the_start_nor_a_carried_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore("continued")
    async with DurableTestHost(index=INDEX, store=store, task_hub="continued") as first:
        instance_id = await first.start("collect")
        await first.idle()
        engine = first.engine
        continue_as_new = engine._continue_as_new

        def then_die(*args: Any) -> None:
            continue_as_new(*args)
            # The process dies after the old generation's checkpoint, before the new one runs.
            monkeypatch.setattr(engine, "_run_episode", lambda instance: None)

        monkeypatch.setattr(engine, "_continue_as_new", then_die)
        # Both land in one episode: 1 ends the generation, 2 is carried over to the next.
        for value in (1, 2):
            await first.raise_event(instance_id, "Add", value, as_client=False)
        await first.idle()
        await first.engine.checkpoint()
        assert not await store.read_messages()  # both events were consumed by that checkpoint
    monkeypatch.undo()

    async with DurableTestHost(index=INDEX, store=store, task_hub="continued") as second:
        await second.idle()
        await second.raise_event(instance_id, "Add", 3, as_client=False)
        status = await second.wait(instance_id)

    assert status["output"] == [1, 2, 3]
