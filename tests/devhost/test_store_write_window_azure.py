"""The store's window of instance writes, on Azurite: a burst of writes waits in the host, not
in storage's queue, so a purge or a status read made meanwhile is not served after all of it."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.pipeline.transport import AsyncHttpTransport

from devhost.azurite import AzuriteProcess
from devhost.store.azure import WRITE_WINDOW, AzureStore
from devhost.store.base import Checkpoint, InstanceRow
from devhost.store.faults import FaultInjector, FaultPlan, FaultyTransport, request_key
from devhost.store.write_window import for_a_client
from tests.devhost.test_store_faults_azure import STARTED
from tests.waiting import eventually

pytestmark = pytest.mark.azurite

BURST = "burst-"


class HeldBurst:
    """Holds every request that writes a ``burst-`` instance until ``release`` is set, and
    counts how many of them storage has been sent at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.in_flight = 0
        self.most = 0
        self.order: list[str] = []  # instance IDs in the order their first request arrived


class _HoldingTransport(FaultyTransport):
    def __init__(self, inner: AsyncHttpTransport, burst: HeldBurst) -> None:
        super().__init__(inner, FaultInjector(FaultPlan()))
        self.burst = burst

    async def send(self, request: Any, **kwargs: Any) -> Any:
        # "PUT .../Instances(PartitionKey='burst-1',...)" or "POST .../$batch burst-1".
        if not request_key(request).startswith(("PUT ", "POST ")) or BURST not in request_key(
            request
        ):
            return await super().send(request, **kwargs)
        burst = self.burst
        instance = re.search(rf"{BURST}[\w-]+", request_key(request))
        if instance is not None and instance.group() not in burst.order:
            burst.order.append(instance.group())
        burst.in_flight += 1
        burst.most = max(burst.most, burst.in_flight)
        try:
            await burst.release.wait()
            return await super().send(request, **kwargs)
        finally:
            burst.in_flight -= 1


@contextlib.asynccontextmanager
async def _holding_store(
    azurite: AzuriteProcess, task_hub: str, burst: HeldBurst, writes: list[asyncio.Future[None]]
) -> AsyncIterator[AzureStore]:
    """An opened Azure store whose requests go through ``_HoldingTransport``; on the way out
    the burst is released, ``writes`` still running are cancelled and the store is closed."""

    class HoldingStore(AzureStore):
        def _transport(self) -> AsyncHttpTransport:
            return _HoldingTransport(super()._transport(), burst)

    store = HoldingStore(azurite.connection_string, task_hub)
    await store.open()
    try:
        yield store
    finally:
        burst.release.set()
        for write in writes:
            write.cancel()
        await asyncio.gather(*writes, return_exceptions=True)
        await store.close()


def _checkpoint(instance_id: str) -> Checkpoint:
    now = datetime.now(UTC)
    row = InstanceRow(instance_id, "mixed", "exec-1", "Completed", now, now, input="1")
    return Checkpoint(row=row, history=[STARTED], persisted_count=0, stored_rows=0)


async def test_a_burst_of_writes_leaves_purges_and_reads_a_short_queue(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    """Forty instances' checkpoints at once (a group commit): storage is sent sixteen, the rest
    wait their turn in the host, and a purge and a status read made meanwhile go straight out
    and are answered while all of the burst is still unanswered. Every write lands after."""
    burst = HeldBurst()

    writes: list[asyncio.Future[None]] = []
    async with _holding_store(azurite, task_hub, burst, writes) as store:
        await store.write_checkpoint(_checkpoint("old-1"))
        writes += [
            asyncio.ensure_future(store.write_checkpoint(_checkpoint(f"{BURST}{n}")))
            for n in range(40)
        ]
        await eventually(lambda: burst.in_flight >= WRITE_WINDOW, "the burst to reach storage")

        assert await store.delete_instance("old-1", history_rows=1) is True
        assert await store.read_instance("old-1") is None
        assert await store.read_instance(f"{BURST}0") is None

        assert not any(write.done() for write in writes)
        assert burst.in_flight == WRITE_WINDOW, "storage was sent more writes than the window"
        burst.release.set()
        await asyncio.wait_for(asyncio.gather(*writes), 60)
        assert burst.most == WRITE_WINDOW
        for n in range(40):
            row = await store.read_instance(f"{BURST}{n}")
            assert row is not None and row.runtime_status == "Completed"


async def test_a_write_a_client_waits_for_goes_before_the_waiting_burst(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    """Sixteen of forty background checkpoints in storage, twenty-four waiting: a start's row
    and the checkpoint of an instance whose status a client reads are sent as soon as slots
    free up, not after the twenty-four (while storage is down, each of those would hold its
    slot through its retries, and the client's 503 would come after all of them)."""
    burst = HeldBurst()

    writes: list[asyncio.Future[None]] = []
    async with _holding_store(azurite, task_hub, burst, writes) as store:
        writes += [
            asyncio.ensure_future(store.write_checkpoint(_checkpoint(f"{BURST}{n}")))
            for n in range(40)
        ]
        await eventually(lambda: burst.in_flight >= WRITE_WINDOW, "the burst to reach storage")

        async def for_the_client(write: Any) -> None:
            with for_a_client():
                await write

        start = _checkpoint(f"{BURST}started").row
        client_writes = [
            asyncio.ensure_future(for_the_client(store.write_row(start))),
            asyncio.ensure_future(
                for_the_client(store.write_checkpoint(_checkpoint(f"{BURST}status")))
            ),
        ]
        writes += client_writes
        await asyncio.sleep(0.2)
        assert len(burst.order) == WRITE_WINDOW, "a write went past the window"
        burst.release.set()
        await asyncio.wait_for(asyncio.gather(*writes), 60)
        first_after_window = burst.order[WRITE_WINDOW : WRITE_WINDOW + 2]
        assert sorted(first_after_window) == [f"{BURST}started", f"{BURST}status"], (
            f"the clients' writes were write {burst.order.index(f'{BURST}status') + 1} of 42, "
            "behind the waiting burst"
        )
        assert len(burst.order) == 42
