"""History rows the store knows are new are inserted, not replaced (on Azurite an upsert looks
the row up twice, and each lookup scans a row of every instance in the hub); one that is there
after all is replaced, so a checkpoint is never refused for it."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime

import pytest

from devhost.azurite import AzuriteProcess
from devhost.storage_settings import DEVSTORE_ACCOUNT_NAME
from devhost.store.azure import AzureStore
from devhost.store.base import Checkpoint, InstanceRow
from devhost.store.faults import FaultInjector, FaultPlan, faulty_azure_store
from devhost.store.retrying import RetryingStore
from devhost.testing import DurableTestHost
from tests.devhost.apps.sequences import CITIES, INDEX
from tests.devhost.test_store_faults_azure import _steps

pytestmark = pytest.mark.azurite

REPLACED = "already written in part"


def _replaced(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if REPLACED in record.getMessage()]


async def test_a_checkpoint_resent_after_its_answer_was_lost_replaces_the_rows_it_inserted(
    azurite: AzuriteProcess, task_hub: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The transaction inserting a new instance's rows is applied and its answer lost; the host
    sends the checkpoint again, whose inserts now find their rows: it replaces them instead,
    and the history is stored once."""
    caplog.set_level(logging.INFO, logger="devhost.store.azure")
    injector = FaultInjector(FaultPlan())
    store = RetryingStore(
        faulty_azure_store(azurite.connection_string, task_hub, injector),
        first_delay=0.01,
        rng=random.Random(1),
    )
    await store.open()
    try:
        now = datetime.now(UTC)
        row = InstanceRow("lost-1", "mixed", "exec-1", "Running", now, now)
        injector.force(f"POST /{DEVSTORE_ACCOUNT_NAME}/$batch lost-1", "lost")

        await store.write_checkpoint(Checkpoint(row, _steps(5), 0, stored_rows=0))

        assert store.retries == 1
        assert _replaced(caplog), "the resent transaction did not meet the rows it inserted"
        stored = await store.read_history("lost-1")
        assert stored is not None
        assert [event["EventId"] for event in stored.events] == [0, 1, 2, 3, 4]
        assert stored.rows == 5
    finally:
        await store.close()


async def test_rows_counted_as_new_are_inserted_and_one_found_stored_is_replaced(
    azurite: AzuriteProcess, task_hub: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpoint told that no row of its instance is stored inserts them: a row left at one
    of those places (by a process this one knows nothing of) makes the insert fail, and the
    store replaces the rows instead. A checkpoint told nothing replaces them at once."""
    caplog.set_level(logging.INFO, logger="devhost.store.azure")
    store = AzureStore(azurite.connection_string, task_hub)
    await store.open()
    try:
        now = datetime.now(UTC)
        for instance_id in ("stray-1", "stray-2"):
            row = InstanceRow(instance_id, "mixed", "exec-1", "Running", now, now)
            await store.write_checkpoint(Checkpoint(row, _steps(3), 0))
        assert not _replaced(caplog)

        newer = [{**event, "Name": "again"} for event in _steps(5)]
        row = InstanceRow("stray-1", "mixed", "exec-2", "Running", now, now)
        await store.write_checkpoint(Checkpoint(row, newer, 0, stored_rows=0))
        assert len(_replaced(caplog)) == 1
        row = InstanceRow("stray-2", "mixed", "exec-2", "Running", now, now)
        await store.write_checkpoint(Checkpoint(row, newer, 0))
        assert len(_replaced(caplog)) == 1

        for instance_id in ("stray-1", "stray-2"):
            stored = await store.read_history(instance_id)
            assert stored is not None and stored.execution_id == "exec-2"
            assert [event["Name"] for event in stored.events] == ["again"] * 5
    finally:
        await store.close()


class _Recording(AzureStore):
    """Records what each checkpoint was told of the stored rows."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.told: list[tuple[str, int | None, int]] = []

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.told.append(
            (checkpoint.row.execution_id, checkpoint.stored_rows, len(checkpoint.history))
        )
        await super().write_checkpoint(checkpoint)


async def test_a_shorter_generation_replaces_the_longer_ones_rows_and_inserts_only_past_them(
    azurite: AzuriteProcess, task_hub: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The engine counts the rows an instance's earlier generations left: the first generation
    of a new instance inserts its rows, the second, shorter one replaces the rows the first
    left, and no insert meets a stored row."""
    caplog.set_level(logging.INFO, logger="devhost.store.azure")
    store = _Recording(azurite.connection_string, task_hub)
    async with DurableTestHost(index=INDEX, store=store, task_hub=task_hub) as host:
        instance_id = await host.start("shrinking", "first")
        deadline = time.monotonic() + 60
        while (stored := await store.read_history(instance_id)) is None or len(
            stored.events
        ) <= 2 * len(CITIES):
            assert time.monotonic() < deadline, f"the first generation was not stored: {stored}"
            await asyncio.sleep(0.05)
        first = stored.rows
        first_execution = stored.execution_id
        await host.raise_event(instance_id, "Shrink")
        assert (await host.wait(instance_id))["output"] == "done"

    assert not _replaced(caplog)
    assert first is not None
    told_first = [
        (rows, length) for execution, rows, length in store.told if execution == first_execution
    ]
    told_second = [
        (rows, length) for execution, rows, length in store.told if execution != first_execution
    ]
    assert told_first[0][0] == 0, "a new instance's first checkpoint was not told it had no rows"
    assert told_second, "the second generation was never written"
    for rows, length in told_second:
        assert rows is not None and rows >= first > length, (rows, first, length)
    reader = AzureStore(azurite.connection_string, task_hub)
    try:
        stored = await reader.read_history(instance_id)
        assert stored is not None and stored.rows is not None
        assert len(stored.events) < first <= stored.rows
    finally:
        await reader.close()
