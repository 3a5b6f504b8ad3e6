"""Storage faults injected under the Azure SDK clients (an azure-core transport), on Azurite:
the SDKs' retry policies and the host's retries above them, on the real request paths."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError

from devhost.azurite import AzuriteProcess
from devhost.engine.history import EventType
from devhost.storage_settings import DEVSTORE_ACCOUNT_NAME
from devhost.store.azure import AzureStore
from devhost.store.base import Checkpoint, InstanceQuery, InstanceRow
from devhost.store.faults import FAULT_KINDS, FaultInjector, FaultPlan, faulty_azure_store
from devhost.store.retrying import RetryingStore
from devhost.testing import DurableTestHost
from tests.devhost.apps import mixed_work

pytestmark = pytest.mark.azurite


# The first event of an execution of "mixed" with input 1, for writing a history by hand.
STARTED = {
    "EventType": int(EventType.ExecutionStarted),
    "EventId": -1,
    "IsPlayed": False,
    "Timestamp": "2024-05-01T12:00:00Z",
    "Name": "mixed",
    "Input": "1",
}


def WAITING(status: object) -> bool:  # noqa: N802 (reads as a constant at the call site)
    return status == "waiting"


async def test_workflows_finish_through_faults_under_the_sdk_and_the_tables_agree(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    """A fifth of all HTTP requests to storage fail (every kind, the SDKs retry them first) and
    some are slow: every start and event is applied once, and the tables say so."""
    injector = FaultInjector(
        FaultPlan(seed=3, rate=0.2, slow_rate=0.05, slow_seconds=0.02, timeout_seconds=0.05)
    )
    store = RetryingStore(
        faulty_azure_store(azurite.connection_string, task_hub, injector),
        first_delay=0.01,
        max_delay=0.2,
        rng=random.Random(3),
    )
    starts = {f"az-{n}": n for n in range(6)}
    # Every kind at least once whatever the timing: the plan's draws fall on the requests the
    # group commit happens to make, which the machine's load changes (a loaded run once drew
    # no "busy"), so the first checkpoint transaction of five instances meets one kind each.
    account = f"/{DEVSTORE_ACCOUNT_NAME}"
    forced = dict(zip((f"POST {account}/$batch {i}" for i in starts), FAULT_KINDS, strict=False))
    for key, kind in forced.items():
        injector.force(key, kind)
    async with DurableTestHost(index=mixed_work.INDEX, store=store, task_hub=task_hub) as host:
        for instance_id, number in starts.items():
            await host.start("mixed", number, instance_id=instance_id)
        for instance_id in starts:
            await host.wait_for_custom_status(instance_id, WAITING, timeout=60)
            await host.raise_event(instance_id, "Approve", instance_id, as_client=False)
        for instance_id, number in starts.items():
            status = await host.wait(instance_id, 60)
            assert status["runtimeStatus"] == "Completed", status
            assert status["output"] == mixed_work.expected_output(number, instance_id)
    kinds = injector.counts()
    assert all(kinds[kind] for kind in FAULT_KINDS), kinds
    met = {(fault.key, fault.kind) for fault in injector.injected if fault.occurrence == 0}
    assert set(forced.items()) <= met, "a forced fault met no request: its key is stale"

    clean = AzureStore(azurite.connection_string, task_hub)
    try:
        rows, _ = await clean.query_instances(InstanceQuery(), 100, None)
        ids = {*starts, *(f"{i}-child" for i in starts)}
        assert {row.instance_id for row in rows} == ids
        assert {row.runtime_status for row in rows} == {"Completed"}
        for row in rows:
            history = await clean.read_history(row.instance_id)
            assert history is not None and history.execution_id == row.execution_id
            types = [event["EventType"] for event in history.events]
            assert types.count(EventType.ExecutionStarted) == 1
            assert types.count(EventType.ExecutionCompleted) == 1
        # Every message was consumed once; copies left by resent sends go at the next read.
        leftovers = await clean.read_messages()
        for message in leftovers:
            stored = await clean.read_history(message.instance_id)
            assert stored is not None and message.msg_id <= stored.inbox_watermark
    finally:
        await clean.close()


async def test_a_busy_answer_is_retried_by_the_sdk_a_lost_post_by_the_host(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    """Two 503s on a row write are the SDK's to retry (the store call sees none); a table
    transaction whose answer is lost is not resent by the SDK (a POST), so the host does."""
    injector = FaultInjector(FaultPlan())
    store = RetryingStore(
        faulty_azure_store(azurite.connection_string, task_hub, injector), first_delay=0.01
    )
    await store.open()
    try:
        now = datetime.now(UTC)
        row = InstanceRow("busy-1", "mixed", "exec-1", "Pending", now, now, input="1")
        account = f"/{DEVSTORE_ACCOUNT_NAME}"
        injector.force(
            f"PUT {account}/{task_hub}Instances(PartitionKey='busy-1',RowKey='')", "busy", "busy"
        )
        await store.write_row(row)
        assert store.retries == 0
        assert [fault.kind for fault in injector.injected] == ["busy", "busy"]

        injector.force(f"POST {account}/$batch busy-1", "lost")
        await store.write_checkpoint(Checkpoint(row=row, history=[STARTED], persisted_count=0))
        assert store.retries == 1
        stored = await store.read_history("busy-1")
        assert stored is not None and len(stored.events) == 1
    finally:
        await store.close()


async def test_a_purge_whose_row_delete_answer_is_lost_says_it_deleted_the_row(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    """The instance row's DELETE is applied and its answer lost; the SDK resends it and gets
    404: the purge still says it removed the instance (its retention job would otherwise skip
    what follows a purge)."""
    injector = FaultInjector(FaultPlan())
    store = faulty_azure_store(azurite.connection_string, task_hub, injector)
    await store.open()
    try:
        now = datetime.now(UTC)
        await store.write_row(InstanceRow("lost-1", "mixed", "exec-1", "Completed", now, now))
        account = f"/{DEVSTORE_ACCOUNT_NAME}"
        row = f"DELETE {account}/{task_hub}Instances(PartitionKey='lost-1',RowKey='')"
        injector.force(row, "lost")

        assert await store.delete_instance("lost-1") is True

        assert [(fault.kind, fault.key) for fault in injector.injected] == [("lost", row)]
        assert await store.read_instance("lost-1") is None
        # Refused before it was sent, the first attempt deleted nothing: 404 is the answer.
        injector.force(row, "reset")
        assert await store.delete_instance("lost-1") is False
    finally:
        await store.close()


def _steps(count: int) -> list[dict[str, object]]:
    return [
        {
            "EventType": int(EventType.TaskScheduled),
            "EventId": number,
            "IsPlayed": False,
            "Timestamp": "2024-05-01T12:00:00Z",
            "Name": "step",
        }
        for number in range(count)
    ]


async def test_a_purge_cut_short_after_the_blobs_leaves_an_instance_that_reads_and_purges(
    azurite: AzuriteProcess, task_hub: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The purge of a finished instance with a large input and output stops after its blobs
    went and before its row did (the row DELETE never reaches the service): the row reads and
    lists with those values absent (and a warning), and the next purge removes it. A running
    instance whose blob is missing still fails to read: its input is never made up."""
    injector = FaultInjector(FaultPlan())
    store = faulty_azure_store(azurite.connection_string, task_hub, injector)
    await store.open()
    big = '"' + "x" * 70_000 + '"'
    try:
        now = datetime.now(UTC)
        done = InstanceRow("cut-1", "mixed", "exec-1", "Completed", now, now, input=big, output=big)
        await store.write_checkpoint(Checkpoint(row=done, history=_steps(3), persisted_count=0))
        account = f"/{DEVSTORE_ACCOUNT_NAME}"
        row_delete = f"DELETE {account}/{task_hub}Instances(PartitionKey='cut-1',RowKey='')"
        injector.force(row_delete, *["reset"] * 4)  # the first attempt and the SDK's 3 retries
        with pytest.raises(ServiceRequestError):
            await store.delete_instance("cut-1")

        row = await store.read_instance("cut-1")
        assert row is not None and row.runtime_status == "Completed"
        assert (row.input, row.output) == (None, None)
        assert "cut-1: the blob of its Input is gone" in caplog.text
        rows, _ = await store.query_instances(InstanceQuery(), 100, None)
        assert [listed.instance_id for listed in rows] == ["cut-1"]
        assert await store.read_history("cut-1") is None
        assert await store.delete_instance("cut-1") is True
        assert await store.read_instance("cut-1") is None

        running = InstanceRow("run-1", "mixed", "exec-1", "Running", now, now, input=big)
        await store.write_row(running)
        await store._container.delete_blob("run-1/instance-Input.json.gz")  # type: ignore[attr-defined]
        with pytest.raises(ResourceNotFoundError):
            await store.read_instance("run-1")
    finally:
        await store.close()


async def test_a_purge_cut_short_in_the_history_leaves_no_history_rather_than_a_gapped_one(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    """A history of three transactions; the purge's second transaction never reaches the
    service: what is left reads as no history (not a sentinel counting rows that are gone),
    and the next purge removes the rest."""
    injector = FaultInjector(FaultPlan())
    store = faulty_azure_store(azurite.connection_string, task_hub, injector)
    await store.open()
    try:
        now = datetime.now(UTC)
        done = InstanceRow("long-1", "mixed", "exec-1", "Completed", now, now)
        await store.write_checkpoint(Checkpoint(row=done, history=_steps(230), persisted_count=0))
        injector.force(f"POST /{DEVSTORE_ACCOUNT_NAME}/$batch long-1", "slow", "reset")
        with pytest.raises(ServiceRequestError):
            await store.delete_instance("long-1")

        assert await store.read_history("long-1") is None
        row = await store.read_instance("long-1")
        assert row is not None and row.runtime_status == "Completed"
        assert await store.delete_instance("long-1") is True
        assert await store.read_history("long-1") is None
        assert await store.read_instance("long-1") is None
    finally:
        await store.close()
