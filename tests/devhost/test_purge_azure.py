"""Purging on Azurite: what a purge sends, and that it leaves nothing of the instance."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from devhost.azurite import AzuriteProcess
from devhost.store.azure import AzureStore
from devhost.store.base import Checkpoint, InstanceRow
from devhost.store.faults import FaultInjector, FaultPlan, faulty_azure_store
from devhost.testing import DurableTestHost
from tests.devhost.apps.sequences import CITIES, INDEX
from tests.devhost.test_store_faults_azure import _steps

pytestmark = pytest.mark.azurite


async def _rows_left(store: AzureStore, task_hub: str, instance_id: str) -> list[str]:
    """The RowKeys the History table still holds for ``instance_id``."""
    history = store._table_service.get_table_client(f"{task_hub}History")
    return [
        entity["RowKey"]
        async for entity in history.query_entities(
            f"PartitionKey eq '{instance_id}'", select=["RowKey"]
        )
    ]


def _history_listings(requests: dict[str, int], task_hub: str) -> int:
    return sum(
        count
        for key, count in requests.items()
        if key.startswith("GET ") and f"/{task_hub}History()" in key
    )


async def test_a_purge_of_an_instance_in_memory_deletes_its_history_without_listing_it(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    """An instance this host ran and still holds (its first generation longer than its last):
    the purge deletes every row of both generations by key, without listing the history (on
    Azurite a scan of the whole History table, most of a purge's time under load)."""
    injector = FaultInjector(FaultPlan())
    store = faulty_azure_store(azurite.connection_string, task_hub, injector)
    async with DurableTestHost(index=INDEX, store=store, task_hub=task_hub) as host:
        instance_id = await host.start("shrinking", "first")
        deadline = time.monotonic() + 30
        while len(first := await _rows_left(store, task_hub, instance_id)) <= 2 * len(CITIES):
            assert time.monotonic() < deadline, f"the first generation was not stored: {first}"
            await asyncio.sleep(0.05)
        await host.raise_event(instance_id, "Shrink")
        assert (await host.wait(instance_id))["output"] == "done"
        http = await host.http()
        before = injector.requests()

        purged = await http.delete(f"/runtime/webhooks/durabletask/instances/{instance_id}")

        assert (purged.status, await purged.json()) == (200, {"instancesDeleted": 1})
        sent = injector.requests() - before
        assert _history_listings(sent, task_hub) == 0, sent
        assert await _rows_left(store, task_hub, instance_id) == []
        assert await store.read_instance(instance_id) is None


async def test_a_purge_told_of_rows_that_are_gone_lists_and_deletes_the_rest(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    """A purge resent after its answer was lost, or told of more rows than there are: the
    transaction naming a missing row fails, and the purge lists what is left and deletes it."""
    store = AzureStore(azurite.connection_string, task_hub)
    await store.open()
    try:
        now = datetime.now(UTC)
        row = InstanceRow("told-1", "mixed", "exec-1", "Completed", now, now)
        await store.write_checkpoint(Checkpoint(row, _steps(5), 0))

        assert await store.delete_instance("told-1", history_rows=8) is True

        assert await _rows_left(store, task_hub, "told-1") == []
        assert await store.read_instance("told-1") is None
        assert await store.delete_instance("told-1", history_rows=5) is False
    finally:
        await store.close()


@pytest.mark.parametrize("by_filter", [False, True], ids=["by-id", "by-filter"])
async def test_a_purge_of_an_instance_gone_from_memory_deletes_its_history_without_listing_it(
    azurite: AzuriteProcess, task_hub: str, by_filter: bool
) -> None:
    """The retention job purges instances the host finished long before and no longer holds
    in memory: the host remembers how many history rows each left, so the purge (by ID or by
    filter) deletes them by key instead of scanning the History table, and leaves none."""
    injector = FaultInjector(FaultPlan())
    store = faulty_azure_store(azurite.connection_string, task_hub, injector)
    async with DurableTestHost(index=INDEX, store=store, task_hub=task_hub) as host:
        engine: Any = host.engine
        engine._cache._capacity = 1  # one instance in memory: an older finished one is evicted
        old = await host.start("hello_sequence", "old")
        await host.wait(old)
        newer = await host.start("hello_sequence", "newer")
        await host.wait(newer)
        await engine._checkpointer.checkpoint()  # a group commit: the cache evicts then
        assert old not in engine.instances, "the older instance stayed in memory"
        http = await host.http()
        before = injector.requests()

        if by_filter:  # both: the one in memory is deleted by key too
            purged = await http.delete(
                "/runtime/webhooks/durabletask/instances",
                params={"createdTimeFrom": "2000-01-01T00:00:00Z"},
            )
        else:
            purged = await http.delete(f"/runtime/webhooks/durabletask/instances/{old}")

        gone = [old, newer] if by_filter else [old]
        assert (purged.status, await purged.json()) == (200, {"instancesDeleted": len(gone)})
        sent = injector.requests() - before
        assert _history_listings(sent, task_hub) == 0, sent
        for instance_id in gone:
            assert await _rows_left(store, task_hub, instance_id) == []
            assert await store.read_instance(instance_id) is None
