"""Restarting the host on the same store: waiting instances and in-flight activities resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from devhost.engine.runtime import EngineSettings
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost
from tests.devhost.apps import outside_calls, sequences, waiting
from tests.devhost.apps.outside_calls import INDEX
from tests.durability.crash import life_that_crashes

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
    assert await asyncio.to_thread(outside_calls.slow_step_started.wait, 60)

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


def _lose_row_writes(store: MemoryStore, instance_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, checkpoints of ``instance_id`` write its history but never its row, and no
    message is deleted: as if the process died after the history write of the checkpoint."""
    write_checkpoint = store.write_checkpoint
    stale = store.instances[instance_id]

    async def history_only(checkpoint: Any) -> None:
        await write_checkpoint(checkpoint)
        if checkpoint.row.instance_id == instance_id:
            store.instances[instance_id] = stale

    async def nothing(messages: Any) -> None:
        return None

    monkeypatch.setattr(store, "write_checkpoint", history_only)
    monkeypatch.setattr(store, "delete_messages", nothing)


async def test_a_row_write_lost_after_a_continue_as_new_is_rebuilt_from_the_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore(TASK_HUB)
    async with DurableTestHost(index=waiting.INDEX, store=store, task_hub=TASK_HUB) as first:
        instance_id = await first.start("collect")
        await first.idle()
        await first.engine.checkpoint()
        _lose_row_writes(store, instance_id, monkeypatch)
        await first.raise_event(instance_id, "Add", 1, as_client=False)
        await first.idle()
    monkeypatch.undo()
    assert store.instances[instance_id].generation == 0  # the row still shows the first one

    async with DurableTestHost(index=waiting.INDEX, store=store, task_hub=TASK_HUB) as second:
        status = await second.status(instance_id)
        assert status is not None and status["input"] == '{"values": [1]}'
        for value in (2, 3):
            await second.raise_event(instance_id, "Add", value, as_client=False)
        status = await second.wait(instance_id)
        await second.engine.checkpoint()

    assert status["output"] == [1, 2, 3]
    assert store.instances[instance_id].runtime_status == "Completed"


async def test_a_restarted_instance_whose_row_still_shows_the_old_run_resumes(
    slow_step: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore(TASK_HUB)
    settings = EngineSettings(stop_grace=0.1)
    first = DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB)
    first.engine.settings = settings
    await first.__aenter__()
    instance_id = await first.start("approve_then_shout", instance_id="again")
    await first.raise_event(instance_id, "Approve", "once", as_client=False)
    assert (await first.wait(instance_id))["output"] == "ONCE"
    await first.engine.checkpoint()
    _lose_row_writes(store, instance_id, monkeypatch)
    await first.start("runs_slow_step", "order", instance_id=instance_id)
    assert await asyncio.to_thread(outside_calls.slow_step_started.wait, 60)
    await first.__aexit__(None, None, None)
    monkeypatch.undo()
    assert store.instances[instance_id].runtime_status == "Completed"  # the old run's row
    outside_calls.release_slow_step.set()

    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as second:
        status = await second.wait(instance_id)

    assert status["output"] == "slow order"
    assert outside_calls.slow_step_calls == 2


async def test_a_finished_instance_is_shown_finished_only_once_that_is_in_the_store() -> None:
    # A client that saw "Completed" and an output must find the same after a crash, so the
    # end is written before it is shown (the real host reads status from the Instances
    # table). Here the group commit is too slow to help and the store's write of the end is
    # held (the writes before it land: each activity starts once its episode is stored).
    store = MemoryStore(TASK_HUB)
    release = asyncio.Event()
    write_checkpoint = store.write_checkpoint

    async def held(checkpoint: Any) -> None:
        if checkpoint.row.runtime_status == "Completed":
            await release.wait()
        await write_checkpoint(checkpoint)

    store.write_checkpoint = held  # type: ignore[method-assign]
    async with DurableTestHost(
        index=sequences.INDEX, store=store, task_hub=TASK_HUB, checkpoint_interval=60
    ) as host:
        instance_id = await host.start("hello_sequence")
        waiting_for_end = asyncio.create_task(host.wait(instance_id))
        await host.idle()  # finished in memory
        status_read = asyncio.create_task(host.status(instance_id))
        await asyncio.sleep(0.05)
        try:
            assert not waiting_for_end.done() and not status_read.done()
            assert store.instances[instance_id].runtime_status != "Completed"
        finally:
            release.set()  # a failed check must not leave the host's stop waiting on the store

        status = await waiting_for_end
        assert status["runtimeStatus"] == "Completed"
        assert store.instances[instance_id].runtime_status == "Completed"
        assert json.loads(store.instances[instance_id].output or "") == status["output"]
        shown = await status_read
        assert shown is not None and shown["runtimeStatus"] == "Completed"


async def test_a_start_acknowledged_but_never_run_runs_after_a_crash() -> None:
    # The start is recorded as the instance's Pending row before start() returns; the host
    # dies right after that write (nothing in memory reaches the store).
    store = MemoryStore(TASK_HUB)
    async with life_that_crashes(sequences.INDEX, store) as first:
        first.point.stop_after(1)
        instance_id = await first.engine.start_new("hello_sequence", None, None)
    assert store.instances[instance_id].runtime_status == "Pending"
    assert await store.read_history(instance_id) is None

    async with DurableTestHost(index=sequences.INDEX, store=store, task_hub=TASK_HUB) as second:
        status = await second.wait(instance_id)

    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
