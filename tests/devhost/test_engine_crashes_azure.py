"""Crashes at the instants that used to lose or strand work on Azure Storage (Azurite), where a
checkpoint is several requests: one test each (``test_engine_crashes`` holds the others)."""

from __future__ import annotations

import asyncio
import time

import pytest

from devhost.azurite import AzuriteProcess
from devhost.engine.clock import VirtualClock
from devhost.engine.runtime import EngineSettings
from devhost.store.azure import AzureStore
from devhost.store.azure_layout import MAX_TRANSACTION_OPERATIONS, SENTINEL_ROW_KEY, TableRow
from devhost.testing import DurableTestHost
from tests.devhost.apps import generations
from tests.durability.crash import CrashPoint, EngineLife, _CrashingAzureStore

pytestmark = pytest.mark.azurite


class _TornWideCheckpointStore(_CrashingAzureStore):
    """Dies as it sends the sentinel's transaction of a checkpoint that needs more than one
    (the transactions before it committed)."""

    async def _submit(self, batch: list[TableRow], inserted: set[str]) -> None:
        last = batch[-1].entity
        if (
            self.point is not None
            and last["RowKey"] == SENTINEL_ROW_KEY
            and last["HistoryCount"] >= MAX_TRANSACTION_OPERATIONS
        ):
            self.point.stop_after(0)
        await super()._submit(batch, inserted)


async def test_a_continue_as_new_whose_first_checkpoint_is_torn_across_transactions_resumes(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    """The next generation's first checkpoint replaces the previous execution's history rows
    and needs two transactions: the one without the sentinel commits, the crash takes the
    other (the event that ended the first generation was acknowledged). The stored execution
    must still read whole (the one before, or the new one's opening), or the instance is left
    running with no history and nothing to do."""
    point = CrashPoint()
    store = _TornWideCheckpointStore(azurite.connection_string, task_hub)
    await store.open()
    store.point = point
    life = EngineLife(
        generations.INDEX,
        store,
        point,
        VirtualClock(),
        task_hub=task_hub,
        settings=EngineSettings(checkpoint_interval=0),
    )
    try:
        await life.engine.start()
        engine = life.engine
        instance_id = await engine.start_new("widen", None, None)
        deadline = time.monotonic() + 60
        while not engine.instances[instance_id].history:
            assert time.monotonic() < deadline, "the first generation never ran"
            await asyncio.sleep(0.01)
        await engine.checkpoint()  # the first generation is stored
        await engine.raise_event(instance_id, "Widen", None)
        deadline = time.monotonic() + 60
        while not point.crashed:
            assert time.monotonic() < deadline, "the wide checkpoint was never sent"
            await asyncio.sleep(0.01)
    finally:
        await life.abandon()

    second = AzureStore(azurite.connection_string, task_hub)
    async with DurableTestHost(index=generations.INDEX, store=second, task_hub=task_hub) as host:
        status = await host.wait(instance_id, timeout=20)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == sum(n + 1 for n in range(generations.WIDTH))
