"""Rewind: a failed instance re-runs only what failed, as the Azure Storage backend does it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost.azurite import AzuriteProcess
from devhost.engine.api import InstanceGone, InvalidOperation
from devhost.engine.history import EventType
from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost
from tests.devhost.apps import rewinding
from tests.devhost.apps.rewinding import INDEX
from tests.durability.crash import life_that_crashes

TASK_HUB = "rewindhub"


@pytest.fixture(autouse=True)
def fresh_app_state() -> Iterator[None]:
    rewinding.broken.clear()
    rewinding.calls.clear()
    yield
    rewinding.broken.clear()


async def test_rewound_chain_reruns_the_failed_activity_and_continues() -> None:
    rewinding.broken.add("b")
    async with DurableTestHost(index=INDEX) as host:
        instance_id = await host.start("chain")
        failed = await host.wait(instance_id)
        assert failed["runtimeStatus"] == "Failed"
        assert "b is broken" in failed["output"]

        rewinding.broken.clear()  # the outside problem got fixed
        await host.engine.rewind(instance_id, "fixed the b service")
        status = await host.wait(instance_id)

        assert status["runtimeStatus"] == "Completed"
        assert status["output"] == ["A", "B", "C"]
        # Completed work is not redone: only the failed activity ran again.
        assert rewinding.calls == {"steady:a": 1, "fragile:b": 2, "steady:c": 1}


async def test_rewound_history_keeps_the_failure_as_generic_events() -> None:
    rewinding.broken.add("b")
    async with DurableTestHost(index=INDEX) as host:
        instance_id = await host.start("chain")
        await host.wait(instance_id)
        rewinding.broken.clear()
        await host.engine.rewind(instance_id, "retry")
        await host.wait(instance_id)
        history = host.engine.instances[instance_id].history

    reasons = [e.get("Reason") for e in history if e["EventType"] == EventType.GenericEvent]
    assert reasons == [
        "Rewound: TaskScheduled",
        "Rewound: TaskFailed",
        "Rewound: ExecutionCompleted",
        None,  # the rewind request itself, carrying the reason as Data
    ]
    rescheduled = [
        e["EventId"]
        for e in history
        if e["EventType"] == EventType.TaskScheduled and e["Name"] == "fragile"
    ]
    assert rescheduled == [1]  # the same sequence number as the failed attempt


async def test_rewind_in_a_fan_out_reruns_only_the_failed_branch() -> None:
    rewinding.broken.update({"y"})
    async with DurableTestHost(index=INDEX) as host:
        instance_id = await host.start("fan_out")
        assert (await host.wait(instance_id))["runtimeStatus"] == "Failed"
        rewinding.broken.clear()
        await host.engine.rewind(instance_id, None)
        status = await host.wait(instance_id)

    assert status["output"] == ["X", "Y", "Z"]
    assert rewinding.calls == {"fragile:x": 1, "fragile:y": 2, "fragile:z": 1}


async def test_rewind_after_retries_fails_as_non_deterministic_like_the_real_host() -> None:
    # A known limitation of the Azure Storage rewind (durabletask #811, durable extension #617):
    # the retry timers stay in the history while the failed attempts become GenericEvents, so
    # the replay meets a timer the code has not scheduled. Users see the same failure here.
    rewinding.broken.add("r")
    async with DurableTestHost(index=INDEX) as host:
        instance_id = await host.start("with_retries")
        assert (await host.wait(instance_id))["runtimeStatus"] == "Failed"
        rewinding.broken.clear()
        await host.engine.rewind(instance_id, None)
        status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Failed"
    assert "Non-Deterministic workflow detected" in status["output"]
    assert "a timer task with sequence ID 1" in status["output"]


async def test_rewinding_a_parent_rewinds_its_failed_sub_orchestration() -> None:
    rewinding.broken.add("b")
    async with DurableTestHost(index=INDEX) as host:
        instance_id = await host.start("parent")
        assert (await host.wait(instance_id))["runtimeStatus"] == "Failed"
        child = await host.status(f"{instance_id}-child")
        assert child is not None and child["runtimeStatus"] == "Failed"

        rewinding.broken.clear()
        await host.engine.rewind(instance_id, "again")
        status = await host.wait(instance_id)
        child = await host.status(f"{instance_id}-child")

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["P", ["A", "B", "C"]]
    assert child is not None and child["runtimeStatus"] == "Completed"
    assert rewinding.calls["steady:p"] == 1 and rewinding.calls["steady:a"] == 1


async def test_only_failed_instances_can_be_rewound() -> None:
    async with DurableTestHost(index=INDEX) as host:
        instance_id = await host.start("chain")
        await host.wait(instance_id)
        with pytest.raises(InstanceGone):
            await host.engine.rewind(instance_id, "completed already")


async def test_rewinding_a_running_instance_is_an_invalid_operation() -> None:
    rewinding.broken.add("b")
    async with DurableTestHost(index=INDEX, virtual_time="manual") as host:
        instance_id = await host.start("parent")
        await host.wait(instance_id)
        rewinding.broken.clear()
        await host.engine.rewind(instance_id, "once")
        with pytest.raises(InvalidOperation):
            await host.engine.rewind(instance_id, "twice")  # now Pending/Running, not Failed
        await host.wait(instance_id)


async def test_an_acknowledged_rewind_survives_a_crash_before_the_checkpoint() -> None:
    rewinding.broken.add("b")
    store = MemoryStore(TASK_HUB)
    async with life_that_crashes(INDEX, store) as first:
        instance_id = await first.engine.start_new("chain", None, None)
        await first.engine.wait_for_completion(instance_id, 60)
        # The crash: the rewind's message is stored (the 202 went out) but nothing after it
        # was, neither the rewritten history nor the episode.
        first.point.stop_after(1)
        await first.engine.rewind(instance_id, "before the crash")
    assert store.instances[instance_id].runtime_status == "Failed"

    rewinding.broken.clear()
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as second:
        status = await second.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["A", "B", "C"]
    assert rewinding.calls["fragile:b"] == 2


@pytest.mark.azurite
async def test_a_rewound_history_is_rewritten_in_azure_storage(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    rewinding.broken.add("b")
    store = AzureStore(azurite.connection_string, task_hub)
    try:
        async with DurableTestHost(index=INDEX, store=store, task_hub=task_hub) as host:
            instance_id = await host.start("chain")
            await host.wait(instance_id)
            rewinding.broken.clear()
            await host.engine.rewind(instance_id, "retry")
            await host.wait(instance_id)
        await store.open()  # the engine closed it on the way out; read what it left
        stored = await store.read_history(instance_id)
        row = await store.read_instance(instance_id)
    finally:
        await store.close()

    assert row is not None and row.runtime_status == "Completed"
    assert stored is not None
    types = [EventType(e["EventType"]).name for e in stored.events]
    assert "TaskFailed" not in types
    assert types.count("GenericEvent") == 4
    assert types[-2:] == ["ExecutionCompleted", "OrchestratorCompleted"]
