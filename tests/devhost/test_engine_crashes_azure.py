"""Crashes at the instants that used to lose or strand work on Azure Storage (Azurite), where a
checkpoint is several requests: one test each (``test_engine_crashes`` holds the others)."""

from __future__ import annotations

import asyncio

import pytest

from devhost.app.loader import FunctionIndex
from devhost.azurite import AzuriteProcess
from devhost.engine.clock import VirtualClock
from devhost.engine.history import EventType
from devhost.engine.runtime import Engine, EngineSettings
from devhost.store.azure import AzureStore, _PreparedCheckpoint
from devhost.store.azure_layout import MAX_TRANSACTION_OPERATIONS, SENTINEL_ROW_KEY, TableRow
from devhost.testing import DurableTestHost
from tests.devhost.apps import generations, rewinding
from tests.devhost.test_engine_crashes import until
from tests.durability.crash import CrashPoint, EngineLife, _CrashingAzureStore

pytestmark = pytest.mark.azurite


def _life(index: FunctionIndex, store: AzureStore, point: CrashPoint, task_hub: str) -> EngineLife:
    """An engine on ``store`` that writes each change at once (no group commit)."""
    return EngineLife(
        index,
        store,
        point,
        VirtualClock(),
        task_hub=task_hub,
        settings=EngineSettings(checkpoint_interval=0),
    )


async def _first_generation_stored(engine: Engine, name: str) -> str:
    """Start ``name`` and return its instance ID once its first generation ran and is stored."""
    instance_id = await engine.start_new(name, None, None)
    await until(lambda: bool(engine.instances[instance_id].history), "the first generation ran")
    await engine.checkpoint()
    return instance_id


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
    life = _life(generations.INDEX, store, point, task_hub)
    try:
        await life.engine.start()
        engine = life.engine
        instance_id = await _first_generation_stored(engine, "widen")
        await engine.raise_event(instance_id, "Widen", None)
        await until(lambda: point.crashed, "the wide checkpoint was sent")
    finally:
        await life.abandon()

    second = AzureStore(azurite.connection_string, task_hub)
    async with DurableTestHost(index=generations.INDEX, store=second, task_hub=task_hub) as host:
        status = await host.wait(instance_id, timeout=20)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == sum(n + 1 for n in range(generations.WIDTH))


class _KilledInAWideRewrite(_CrashingAzureStore):
    """Dies at one write of the first checkpoint, once armed, that needs three transactions or
    more: as it sends transaction ``kill_at`` (0-based), after every transaction sent beside
    it has landed, or as it writes the instance row (``kill_at`` None)."""

    def __init__(self, connection_string: str, task_hub: str, kill_at: int | None) -> None:
        super().__init__(connection_string, task_hub)
        self.kill_at = kill_at
        self.armed = False
        self.batches: list[list[TableRow]] = []  # those of the checkpoint it died in
        self._doomed: object = None
        self._in_flight: set[asyncio.Future[None]] = set()

    async def _commit_checkpoint(self, written: _PreparedCheckpoint) -> None:
        if self.armed and len(written.batches) >= 3:
            self.armed = False
            self.batches = written.batches
            self._doomed = (
                written.instance if self.kill_at is None else written.batches[self.kill_at]
            )
        await super()._commit_checkpoint(written)

    async def _submit(self, batch: list[TableRow], inserted: set[str]) -> None:
        sent = asyncio.get_running_loop().create_future()
        self._in_flight.add(sent)
        try:
            if batch is self._doomed and self.point is not None:
                await asyncio.sleep(0)  # transactions sent beside this one are sent
                others = [other for other in self._in_flight if other is not sent]
                if others:
                    await asyncio.wait(others, timeout=30)
                self.point.stop_after(0)
            await super()._submit(batch, inserted)
        finally:
            self._in_flight.discard(sent)
            sent.set_result(None)

    async def _replace_instance(self, row: TableRow) -> None:
        if row is self._doomed and self.point is not None:
            self.point.stop_after(0)
        await super()._replace_instance(row)


@pytest.mark.parametrize(
    "kill_at",
    [0, 1, 2, None],
    ids=["first transaction", "second transaction", "third transaction", "instance row"],
)
async def test_a_rewind_of_a_long_history_killed_mid_write_completes_after_a_restart(
    azurite: AzuriteProcess, task_hub: str, kill_at: int | None
) -> None:
    """A rewind rewrites the rows of a failed fan-out of 100 branches from its first
    ``TaskScheduled`` on: over 200 rows, three transactions. The host is killed at each of
    them and at the instance row. Whatever part of the rewrite landed, the acknowledged rewind
    must run the failed branch again and complete with the whole history: a rewritten
    ``TaskFailed`` whose ``TaskScheduled`` was not rewritten (a later transaction landing
    before an earlier one) leaves a branch scheduled that nothing runs, and the instance
    waits for ever."""
    rewinding.calls.clear()
    rewinding.broken.clear()
    rewinding.broken.add("w0")
    point = CrashPoint()
    store = _KilledInAWideRewrite(azurite.connection_string, task_hub, kill_at)
    await store.open()
    store.point = point
    life = _life(rewinding.INDEX, store, point, task_hub)
    try:
        await life.engine.start()
        engine = life.engine
        instance_id = await engine.start_new("wide_fan_out", None, None)
        failed = await engine.wait_for_completion(instance_id, 60)
        assert failed is not None and failed["runtimeStatus"] == "Failed"
        rewinding.broken.clear()
        store.armed = True
        await engine.rewind(instance_id, "w0 is fixed")  # acknowledged
        await until(lambda: point.crashed, "the rewind's checkpoint was sent")
    finally:
        await life.abandon()
        rewinding.broken.clear()
    # The rewind rewrites three transactions' worth of rows; the failed branch's TaskScheduled
    # is in the first, its TaskFailed in the second.
    assert len(store.batches) == 3
    reasons = [[row.entity.get("Reason") for row in batch] for batch in store.batches]
    assert "Rewound: TaskScheduled" in reasons[0] and "Rewound: TaskFailed" in reasons[1]

    second = AzureStore(azurite.connection_string, task_hub)
    try:
        async with DurableTestHost(index=rewinding.INDEX, store=second, task_hub=task_hub) as host:
            status = await host.wait(instance_id, timeout=30)
        await second.open()  # the host closed it on its way out; read what it left
        stored = await second.read_history(instance_id)
    finally:
        await second.close()

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == [f"W{n}" for n in range(rewinding.WIDE)]
    assert rewinding.calls["fragile:w0"] >= 2
    assert all(rewinding.calls[f"fragile:w{n}"] == 1 for n in range(1, rewinding.WIDE))
    assert stored is not None
    types = [EventType(event["EventType"]).name for event in stored.events]
    assert "TaskFailed" not in types
    assert types.count("TaskCompleted") == rewinding.WIDE
    assert types.count("ExecutionStarted") == 1
    assert types[-2:] == ["ExecutionCompleted", "OrchestratorCompleted"]
    reasons_left = [
        event.get("Reason")
        for event in stored.events
        if event["EventType"] == EventType.GenericEvent
    ]
    assert reasons_left == [
        "Rewound: TaskScheduled",
        "Rewound: TaskFailed",
        "Rewound: ExecutionCompleted",
        None,  # the rewind request itself
    ]


async def test_a_continue_as_new_carrying_more_events_than_a_transaction_holds_resumes(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    """A generation continues as new with 100 events raised after its "Go" (held while it
    was suspended, then applied in one episode): the new generation opens with them, more
    rows than one transaction holds, so its opening cannot go first in one. Killed as the
    sentinel's transaction is sent, after the transactions before it committed: the stored
    execution must still read whole, or (as before the rows it holds went with the sentinel)
    the history reads as torn, no events, and the events, delivered again to an instance
    with no ``ExecutionStarted``, never start the generation."""
    point = CrashPoint()
    store = _TornWideCheckpointStore(azurite.connection_string, task_hub)
    await store.open()
    life = _life(generations.INDEX, store, point, task_hub)
    try:
        await life.engine.start()
        engine = life.engine
        instance_id = await _first_generation_stored(engine, "carry")
        await engine.suspend(instance_id, "gather")
        await until(lambda: engine.instances[instance_id].status == "Suspended", "it was suspended")
        await engine.checkpoint()
        await engine.raise_event(instance_id, "Go", None)
        for _ in range(generations.CARRIED):
            await engine.raise_event(instance_id, "Extra", None)
        store.point = point
        await engine.resume(instance_id, "go")
        await until(lambda: point.crashed, "the wide checkpoint was sent")
    finally:
        await life.abandon()

    second = AzureStore(azurite.connection_string, task_hub)
    async with DurableTestHost(index=generations.INDEX, store=second, task_hub=task_hub) as host:
        status = await host.wait(instance_id, timeout=10)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == generations.CARRIED
