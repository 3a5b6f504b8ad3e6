"""Starting, terminating, suspending and resuming instances, and what the engine refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devhost.engine.api import (
    InstanceAlreadyExists,
    InstanceGone,
    InvalidOperation,
    InvalidRequest,
)
from devhost.engine.client import _may_find
from devhost.engine.instance import Instance
from devhost.store.base import InstanceQuery
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost
from tests.devhost.apps.waiting import INDEX
from tests.waiting import DEFAULT_TIMEOUT, eventually


@pytest.fixture
async def host() -> AsyncIterator[DurableTestHost]:
    async with DurableTestHost(index=INDEX) as test_host:
        yield test_host


async def current(host: DurableTestHost, instance_id: str) -> dict[str, Any]:
    status = await host.status(instance_id)
    assert status is not None
    return status


async def waiting_instance(host: DurableTestHost, instance_id: str | None = None) -> str:
    """An instance blocked on the "Approve" event."""
    instance_id = await host.engine.start_new("wait_for_approve", instance_id, None)
    await host.idle()
    assert (await current(host, instance_id))["runtimeStatus"] == "Running"
    return instance_id


async def test_terminate_ends_the_instance_with_the_reason_as_output(
    host: DurableTestHost,
) -> None:
    instance_id = await waiting_instance(host)

    await host.engine.terminate(instance_id, "no longer needed")
    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "no longer needed"


async def terminated_in(store: MemoryStore) -> str:
    """An instance terminated on a host that is then stopped: in ``store``, in no memory."""
    async with DurableTestHost(index=INDEX, store=store, task_hub=store.task_hub) as first:
        instance_id = await waiting_instance(first)
        await first.engine.terminate(instance_id, "stop")
        await first.wait(instance_id)
    return instance_id


async def test_a_terminated_instance_keeps_its_history_in_the_store() -> None:
    store = MemoryStore("terminated")
    instance_id = await terminated_in(store)

    async with DurableTestHost(index=INDEX, store=store, task_hub="terminated") as second:
        status = await second.status(instance_id, history=True)

    assert status is not None
    assert [event["EventType"] for event in status["historyEvents"]] == [
        "ExecutionStarted",
        "ExecutionTerminated",
        "ExecutionCompleted",
    ]


async def test_events_for_a_terminated_instance_are_refused(host: DurableTestHost) -> None:
    instance_id = await waiting_instance(host)
    await host.engine.terminate(instance_id, "stop")
    await host.wait(instance_id)

    with pytest.raises(InstanceGone):
        await host.raise_event(instance_id, "Approve", "too late")
    with pytest.raises(InstanceGone):
        await host.engine.terminate(instance_id, "again")


async def test_suspended_instance_holds_events_until_resumed(host: DurableTestHost) -> None:
    instance_id = await waiting_instance(host)

    await host.engine.suspend(instance_id, "pause")
    await host.idle()
    assert (await current(host, instance_id))["runtimeStatus"] == "Suspended"

    await host.raise_event(instance_id, "Approve", "while suspended", as_client=False)
    await host.idle()
    status = await current(host, instance_id)
    assert status["runtimeStatus"] == "Suspended"
    assert status["output"] is None

    await host.engine.resume(instance_id, "go on")
    status = await host.wait(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "while suspended"


async def test_suspend_and_resume_are_recorded_in_history(host: DurableTestHost) -> None:
    instance_id = await waiting_instance(host)
    await host.engine.suspend(instance_id, "pause")
    await host.idle()
    await host.raise_event(instance_id, "Approve", "x")
    await host.engine.resume(instance_id, "go on")
    await host.wait(instance_id)

    status = await host.status(instance_id, history=True)

    assert status is not None
    types = [e["EventType"] for e in status["historyEvents"]]
    assert types == [
        "ExecutionStarted",
        "ExecutionSuspended",
        "ExecutionResumed",
        "EventRaised",
        "ExecutionCompleted",
    ]


async def test_suspending_twice_or_resuming_a_running_instance_is_refused(
    host: DurableTestHost,
) -> None:
    instance_id = await waiting_instance(host)

    with pytest.raises(InvalidOperation):
        await host.engine.resume(instance_id, "not suspended")
    await host.engine.suspend(instance_id, "pause")
    await host.idle()
    with pytest.raises(InvalidOperation):
        await host.engine.suspend(instance_id, "pause again")


async def test_terminate_overrides_suspension(host: DurableTestHost) -> None:
    instance_id = await waiting_instance(host)
    await host.engine.suspend(instance_id, "pause")
    await host.idle()

    await host.engine.terminate(instance_id, "give up")
    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "give up"


async def test_starting_a_running_instance_id_again_is_refused(host: DurableTestHost) -> None:
    instance_id = await waiting_instance(host, "order-42")

    with pytest.raises(InstanceAlreadyExists, match="status Running already exists"):
        await host.engine.start_new("wait_for_approve", instance_id, None)


async def test_finished_instance_id_can_be_started_again(host: DurableTestHost) -> None:
    instance_id = await waiting_instance(host, "order-43")
    await host.raise_event(instance_id, "Approve", "first", as_client=False)
    await host.wait(instance_id)

    await host.engine.start_new("wait_for_approve", instance_id, None)
    await host.idle()
    assert (await current(host, instance_id))["runtimeStatus"] == "Running"
    await host.raise_event(instance_id, "Approve", "second", as_client=False)

    assert (await host.wait(instance_id))["output"] == "second"


async def test_unknown_orchestrator_is_refused_with_the_known_names(
    host: DurableTestHost,
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await host.start("no_such_orchestrator")

    message = str(refused.value)
    assert message.startswith(
        "The function 'no_such_orchestrator' doesn't exist, is disabled, or is not an "
        "orchestrator function. Additional info: The following are the known orchestrator "
        "functions: "
    )
    assert "'wait_for_approve'" in message and "'collect'" in message
    assert "'echo'" not in message  # an activity, not an orchestrator


async def test_orchestrator_names_are_case_insensitive(host: DurableTestHost) -> None:
    instance_id = await host.engine.start_new("WAIT_FOR_APPROVE", None, None)
    await host.idle()

    status = await current(host, instance_id)
    assert status["name"] == "wait_for_approve"
    assert status["runtimeStatus"] == "Running"


@pytest.mark.parametrize(
    "instance_id",
    ["@counter@k", "a/b", "a\\b", "a#b", "a?b", "a\x01b", "x" * 257],
)
async def test_invalid_instance_ids_are_refused(host: DurableTestHost, instance_id: str) -> None:
    with pytest.raises(InvalidRequest, match="is not valid"):
        await host.start("wait_for_approve", instance_id=instance_id)
    assert await host.status(instance_id) is None


async def test_longest_valid_instance_id_is_accepted(host: DurableTestHost) -> None:
    instance_id = await host.start("wait_for_approve", instance_id="x" * 256)

    assert instance_id == "x" * 256
    assert await host.status(instance_id) is not None


class HistoryReadsCounted(MemoryStore):
    """A memory store that counts the whole-history reads (on Azurite, a History table scan)."""

    history_reads = 0

    async def read_history(self, instance_id: str) -> Any:
        self.history_reads += 1
        return await super().read_history(instance_id)


async def test_purging_a_finished_instance_over_http_does_not_read_its_history() -> None:
    """The retention job purges instances no host holds in memory: a purge deletes them
    without loading their histories first, and an unknown ID still answers 404."""
    store = HistoryReadsCounted("purges")
    instance_id = await terminated_in(store)

    async with DurableTestHost(index=INDEX, store=store, task_hub="purges") as second:
        http = await second.http()
        store.history_reads = 0
        purged = await http.delete(f"/runtime/webhooks/durabletask/instances/{instance_id}")
        again = await http.delete(f"/runtime/webhooks/durabletask/instances/{instance_id}")

        assert (purged.status, await purged.json()) == (200, {"instancesDeleted": 1})
        assert again.status == 404
        assert store.history_reads == 0
        assert await second.status(instance_id) is None


class DeletesOverlapCounted(MemoryStore):
    """A memory store whose deletes take a moment, counting how many overlap."""

    running = 0
    most = 0

    async def delete_instance(self, instance_id: str, history_rows: int | None = None) -> bool:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.01)
            return await super().delete_instance(instance_id, history_rows)
        finally:
            self.running -= 1


async def test_a_purge_by_filter_deletes_the_instances_side_by_side() -> None:
    """The purge by creation time (the client's ``purge_instance_history_by``) deletes the
    matching instances concurrently, not one storage round trip after the other."""
    store = DeletesOverlapCounted("bulk")
    async with DurableTestHost(index=INDEX, store=store, task_hub="bulk") as host:
        ids = [await waiting_instance(host, f"bulk-{number}") for number in range(30)]
        for instance_id in ids:
            await host.engine.terminate(instance_id, "stop")
            await host.wait(instance_id)
        http = await host.http()

        purged = await http.delete(
            "/runtime/webhooks/durabletask/instances"
            "?createdTimeFrom=2000-01-01T00:00:00Z&runtimeStatus=Terminated"
        )

        assert (purged.status, await purged.json()) == (200, {"instancesDeleted": 30})
        assert [await host.status(instance_id) for instance_id in ids] == [None] * 30
    assert store.most > 1


class OneWriteHeld(MemoryStore):
    """A memory store that holds the checkpoints of ``held`` until told to go on."""

    held = ""

    def __init__(self, task_hub: str) -> None:
        super().__init__(task_hub)
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def write_checkpoint(self, checkpoint: Any) -> None:
        if checkpoint.row.instance_id == self.held:
            self.holding.set()
            await self.release.wait()
        await super().write_checkpoint(checkpoint)


class HeldWrites(OneWriteHeld):
    """A memory store that holds the checkpoints of ``held``, and its instance queries, until
    told to go on."""

    def __init__(self, task_hub: str) -> None:
        super().__init__(task_hub)
        self.querying = asyncio.Event()
        self.query_release = asyncio.Event()

    async def query_instances(self, query: Any, top: int, continuation: str | None) -> Any:
        if self.held:
            self.querying.set()
            await self.query_release.wait()
        return await super().query_instances(query, top, continuation)


async def test_a_purge_by_filter_waits_for_a_write_of_the_instance_under_way() -> None:
    """A finished instance's write starts while a purge by filter lists it: the purge waits
    for the write, so the write cannot land after the delete and bring the instance back."""
    store = HeldWrites("held")
    async with DurableTestHost(index=INDEX, store=store, task_hub="held") as host:
        instance_id = await waiting_instance(host, "held-1")
        await host.engine.terminate(instance_id, "stop")
        await host.wait(instance_id)
        http = await host.http()
        store.held = instance_id
        purge = asyncio.ensure_future(
            http.delete(
                "/runtime/webhooks/durabletask/instances"
                "?createdTimeFrom=2000-01-01T00:00:00Z&runtimeStatus=Terminated"
            )
        )
        await eventually(store.querying.is_set, "the purge to list the instances")
        engine: Any = host.engine
        engine._checkpointer.record(engine._cache.get(instance_id))  # written again
        await eventually(store.holding.is_set, "the instance's write to start")

        store.query_release.set()
        await asyncio.wait({purge}, timeout=0.5)  # time for a purge that does not wait to delete
        store.release.set()
        await eventually(purge.done, "the purge to answer")
        purged = purge.result()

        assert (purged.status, await purged.json()) == (200, {"instancesDeleted": 1})
        assert await store.read_instance(instance_id) is None
        assert await store.read_history(instance_id) is None


async def test_a_listing_by_created_time_does_not_wait_for_writes_of_instances_it_leaves_out() -> (
    None
):
    """The retention job lists instances created before a cutoff while newer ones are busy:
    the listing writes what it may find, and does not wait for the writes of instances
    created after its range (at 100 in flight it waited seconds for a group commit)."""
    store = OneWriteHeld("listing")
    async with DurableTestHost(index=INDEX, store=store, task_hub="listing") as host:
        old = await waiting_instance(host, "old")
        await host.engine.terminate(old, "stop")
        await host.wait(old)
        host.advance(timedelta(days=2))
        new = await waiting_instance(host, "new")
        engine: Any = host.engine
        await engine._checkpointer.checkpoint()  # the new instance's row is stored once
        store.held = new
        engine._checkpointer.record(engine._cache.get(new))  # its next write is held
        await eventually(store.holding.is_set, "the new instance's write to start")
        http = await host.http()
        cutoff = (host.clock.now() - timedelta(days=1)).isoformat()

        listing = asyncio.ensure_future(
            http.get("/runtime/webhooks/durabletask/instances", params={"createdTimeTo": cutoff})
        )
        await asyncio.wait({listing}, timeout=DEFAULT_TIMEOUT)
        store.release.set()
        assert listing.done(), "the listing waited for the write of an instance it leaves out"
        answer = listing.result()
        assert answer.status == 200
        assert [item["instanceId"] for item in await answer.json()] == [old]


def test_a_listing_writes_every_unwritten_instance_whose_row_it_may_find() -> None:
    """What a listing writes first: an instance it may find by its row in the store or by the
    row it will have (a continue-as-new or a restart moves the created time), or one whose
    stored row is not known; not one outside its ID prefix or its created times."""
    day = datetime(2026, 1, 10, tzinfo=UTC)
    query = InstanceQuery(created_from=day, created_to=day + timedelta(days=1))

    def instance(instance_id: str, created: datetime, stored: datetime | None) -> Instance:
        target = Instance(instance_id, "hello", "e1", "Running", created, created)
        target.durable.stored_created = stored
        return target

    before, inside, after = day - timedelta(days=3), day + timedelta(hours=1), day + timedelta(3)
    may_find = _may_find(query)
    assert may_find(instance("moved-in", inside, before))
    assert may_find(instance("moving-out", after, inside))
    assert may_find(instance("never-read", after, None))
    assert not may_find(instance("outside", after, before))
    assert not may_find(instance("newer", after, after))
    naive = InstanceQuery(created_to=(day - timedelta(days=1)).replace(tzinfo=None))
    assert _may_find(naive)(instance("old", before, before))
    assert not _may_find(naive)(instance("new", inside, inside))
    prefixed = _may_find(InstanceQuery(instance_id_prefix="order-"))
    assert prefixed(instance("order-1", after, after))
    assert not prefixed(instance("invoice-1", inside, None))
