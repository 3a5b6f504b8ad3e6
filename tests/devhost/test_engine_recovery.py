"""Restarting the host on the same store: waiting instances and in-flight activities resume."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost
from tests.devhost.apps import outside_calls
from tests.devhost.apps.outside_calls import INDEX

TASK_HUB = "recoveryhub"


@pytest.fixture
def slow_step() -> Iterator[None]:
    outside_calls.release_slow_step.clear()
    outside_calls.slow_step_started.clear()
    outside_calls.slow_step_calls = 0
    yield
    outside_calls.release_slow_step.set()  # never leave a worker thread blocked


async def test_waiting_instance_completes_after_a_restart() -> None:
    store = MemoryStore(TASK_HUB)
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as first:
        instance_id = await first.start("approve_then_shout")
        await first.idle()

    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as second:
        status = await second.status(instance_id)
        assert status is not None and status["runtimeStatus"] == "Running"
        await second.raise_event(instance_id, "Approve", "ship it", as_client=False)
        status = await second.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "SHIP IT"


async def test_event_accepted_before_a_stop_is_not_lost() -> None:
    store = MemoryStore(TASK_HUB)
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as first:
        instance_id = await first.start("approve_then_shout")
        await first.idle()
        await first.raise_event(instance_id, "Approve", "late", as_client=False)

    # The host stopped before processing the event; only the durable inbox holds it.
    assert store.instances[instance_id].runtime_status == "Running"
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as second:
        status = await second.wait(instance_id)

    assert status["output"] == "LATE"


async def test_activity_in_flight_at_shutdown_runs_again_after_restart(slow_step: None) -> None:
    store = MemoryStore(TASK_HUB)
    first = DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB)
    await first.__aenter__()
    instance_id = await first.start("runs_slow_step", "order")
    assert await asyncio.to_thread(outside_calls.slow_step_started.wait, 5)

    # The host stops while the activity is still inside its body (it gives up after a
    # grace period); its result is never recorded.
    await first.__aexit__(None, None, None)
    assert outside_calls.slow_step_calls == 1
    outside_calls.release_slow_step.set()

    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as second:
        status = await second.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "slow order"
    assert outside_calls.slow_step_calls == 2
