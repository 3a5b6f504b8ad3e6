"""The ``Store`` contract, run against MemoryStore and AzureStore (on a private Azurite).

Every test below the contract section runs once per backend; the Azure layout section checks
what lands in the tables, queues and blobs (protocol notes §8).
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.data.tables import EdmType, UpdateMode
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from devhost.azurite import AzuriteProcess
from devhost.store.azure import AzureStore
from devhost.store.azure_layout import (
    control_queue_index,
    event_to_entity,
    expand_connection_string,
    history_row_key,
    is_development_storage,
    sanitize_key,
    table_row,
    unsanitize_key,
    write_transaction,
)
from devhost.store.base import (
    Checkpoint,
    InstanceQuery,
    InstanceRow,
    Store,
    StoredMessage,
)
from devhost.store.memory import MemoryStore

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
TS = "2024-05-01T12:00:00.1234567Z"
BIG_ASCII = json.dumps({"blob": "x" * 70_000})  # over 64 KB as UTF-16 and as UTF-8
BIG_UNICODE = json.dumps("é😀" * 25_000, ensure_ascii=False)  # 75K UTF-16 units


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(params=["memory", pytest.param("azure", marks=pytest.mark.azurite)])
async def store(request: pytest.FixtureRequest, task_hub: str) -> AsyncIterator[Store]:
    """A fresh, open store of each kind (one task hub per test)."""
    if request.param == "memory":
        backend: Store = MemoryStore(task_hub)
    else:
        azurite: AzuriteProcess = request.getfixturevalue("azurite")
        backend = AzureStore(azurite.connection_string, task_hub)
    await backend.open()
    yield backend
    await backend.close()


def make_row(instance_id: str, **changes: Any) -> InstanceRow:
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "name": "OrderWorkflow",
        "execution_id": "exec-1",
        "runtime_status": "Running",
        "created_time": T0,
        "last_updated_time": T0 + timedelta(seconds=1),
        "input": '"{\\"order\\": 1}"',
    }
    values.update(changes)
    return InstanceRow(**values)


def event(event_type: int, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    return {
        "EventType": event_type,
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": TS,
        **fields,
    }


def every_event_type(instance_id: str, execution_id: str = "exec-1") -> list[dict[str, Any]]:
    """One event of each EventType 0..20 with the fields DTFx gives them, and awkward values."""
    failure = {
        "ErrorType": "ValueError",
        "ErrorMessage": "bad",
        "StackTrace": None,
        "InnerFailure": None,
        "IsNonRetriable": False,
    }
    return [
        event(12, IsPlayed=True),
        event(
            0,
            IsPlayed=True,
            OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
            ParentInstance={
                "Name": "Parent",
                "Version": "",
                "TaskScheduledId": 3,
                "OrchestrationInstance": {"InstanceId": "p", "ExecutionId": "e"},
            },
            Name="OrderWorkflow",
            Version="",
            Input='"{\\"order\\": 1}"',
            Tags={"team": "ops"},
            Correlation=None,
            ScheduledStartTime=None,
            Generation=0,
        ),
        event(4, 0, Name="ChargeCard", Version="", Input=None, Tags=None),
        event(5, TaskScheduledId=0, Result='{"ok":true,"amount":12.5}'),
        event(
            6,
            TaskScheduledId=1,
            Reason="Activity failed",
            Details="trace\n\tline",
            FailureDetails=failure,
        ),
        event(7, 2, Name="Child", Version="", InstanceId="child/1#x", Input='"in"'),
        event(8, TaskScheduledId=2, Result="null"),
        event(9, TaskScheduledId=2, Reason="r", Details="d", FailureDetails=None),
        event(10, 3, FireAt="2024-05-04T12:00:00Z"),
        event(11, TimerId=3, FireAt="2024-05-04T12:00:00Z"),
        event(14, 4, InstanceId="@counter@k1", Name="op", Input='{"id":"9f0c","op":"add"}'),
        event(15, Name="Approval", Input='"{\\"approved\\": true}"'),
        event(17, Data="rewind"),
        event(18, State={"Status": "Running", "Items": [1, 2, 3]}),
        event(19, Reason="paused by ops"),
        event(20, Reason=None),
        event(3, Input='"stop: ünïcødé ✓ 😀 \\u0001"'),
        event(2, OrchestrationStatus=3, Result="", FailureDetails=failure),
        event(16, OrchestrationStatus=2, Result='"next"'),
        event(
            1,
            5,
            OrchestrationStatus=1,
            Result='{"total": 3}',
            FailureDetails=None,
            Big=2**40,
            Negative=-(2**35),
            Ratio=0.25,
            Whole=2.0,
            Flags=[True, None, "x"],
            Empty="",
        ),
        event(13),
    ]


def canonical(value: Any) -> str:
    """JSON text that tells 1 from 1.0 from True (``==`` does not)."""
    return json.dumps(value, sort_keys=True)


async def checkpoint(
    store: Store,
    row: InstanceRow,
    history: list[dict[str, Any]],
    persisted: int = 0,
    watermark: str = "",
) -> None:
    await store.write_checkpoint(Checkpoint(row, history, persisted, watermark))


async def assert_history(store: Store, instance_id: str, expected: list[dict[str, Any]]) -> None:
    stored = await store.read_history(instance_id)
    assert stored is not None
    assert canonical(stored.events) == canonical(expected)


@pytest.fixture
def raw_connection(request: pytest.FixtureRequest, store: Store) -> str | None:
    """The Azure store's connection string, for tests that look at storage directly."""
    if not isinstance(store, AzureStore):
        return None
    azurite: AzuriteProcess = request.getfixturevalue("azurite")
    return azurite.connection_string


async def write_orphan_rows(
    store: Store,
    raw_connection: str | None,
    instance_id: str,
    execution_id: str,
    start: int,
    events: list[dict[str, Any]],
) -> None:
    """Write history rows past the sentinel's count, as a crash mid-checkpoint leaves them."""
    if isinstance(store, MemoryStore):
        store.histories[instance_id].rows[start:] = copy.deepcopy(events)
        return
    assert raw_connection is not None
    async with TableServiceClient.from_connection_string(raw_connection) as service:
        table = service.get_table_client(f"{store.task_hub}History")
        for ordinal, orphan in enumerate(events, start):
            entity = event_to_entity(orphan)
            entity.update(
                PartitionKey=sanitize_key(instance_id),
                RowKey=history_row_key(ordinal),
                ExecutionId=execution_id,
            )
            await table.upsert_entity(entity, mode=UpdateMode.REPLACE)


# -- checkpoints and histories ------------------------------------------------------------------


async def test_checkpoint_round_trips_every_event_type(store: Store) -> None:
    history = every_event_type("order-1")
    assert sorted({e["EventType"] for e in history}) == list(range(21))
    row = make_row("order-1", custom_status='{"step": 2}', generation=3, parent_instance_id="p")

    await checkpoint(store, row, history, watermark="msg-0007")

    stored = await store.read_history("order-1")
    assert stored is not None
    assert stored.execution_id == "exec-1"
    assert stored.inbox_watermark == "msg-0007"
    assert canonical(stored.events) == canonical(history)
    assert stored.events == history
    assert await store.read_instance("order-1") == row


async def test_large_payloads_round_trip(store: Store) -> None:
    # Many strings that each fit a property but together exceed an entity's 1 MiB.
    medium = {f"Part{i}": "m" * 30_000 for i in range(20)}
    history = [
        event(12),
        event(0, Name="OrderWorkflow", Version="", Input=BIG_ASCII, OrchestrationInstance={}),
        event(5, TaskScheduledId=0, Result=BIG_UNICODE),
        event(18, State={"list": ["y" * 40_000]}),
        event(17, **medium),
    ]
    row = make_row(
        "big/1", input=BIG_ASCII, output=BIG_UNICODE, custom_status=json.dumps("s" * 40_000)
    )

    await checkpoint(store, row, history)

    await assert_history(store, "big/1", history)
    assert await store.read_instance("big/1") == row


async def test_a_row_written_alone_is_read_back_and_replaced_by_a_checkpoint(
    store: Store,
) -> None:
    pending = make_row("start/1", runtime_status="Pending", input=BIG_ASCII)
    await store.write_row(pending)

    assert await store.read_instance("start/1") == pending
    assert await store.read_history("start/1") is None
    rows, _ = await store.query_instances(InstanceQuery(runtime_status=["Pending"]), 10, None)
    assert [row.instance_id for row in rows] == ["start/1"]

    running = make_row("start/1", runtime_status="Running")
    await checkpoint(store, running, [event(12), event(0, Name="OrderWorkflow")])
    assert await store.read_instance("start/1") == running


async def test_incremental_checkpoints_append(store: Store) -> None:
    history = every_event_type("inc")
    row = make_row("inc")
    await checkpoint(store, row, history[:3], watermark="m1")

    completed = make_row("inc", runtime_status="Completed", output='"done"', completed_time=T0)
    await checkpoint(store, completed, history, persisted=3, watermark="m2")

    stored = await store.read_history("inc")
    assert stored is not None
    assert canonical(stored.events) == canonical(history)
    assert stored.inbox_watermark == "m2"
    assert await store.read_instance("inc") == completed


async def test_a_checkpoint_without_its_row_stores_the_history_and_leaves_the_row(
    store: Store,
) -> None:
    """The engine stores an episode before the activity it scheduled starts; the row, which
    that changes nothing in, follows with a later checkpoint."""
    history = every_event_type("lag")
    running = make_row("lag")
    await checkpoint(store, running, history[:3], watermark="m1")
    later = make_row("lag", custom_status='"step 2"', last_updated_time=T0 + timedelta(hours=1))
    await store.write_checkpoint(Checkpoint(later, history, 3, "m2", with_row=False))

    stored = await store.read_history("lag")
    assert stored is not None
    assert canonical(stored.events) == canonical(history)
    assert stored.inbox_watermark == "m2"
    assert await store.read_instance("lag") == running


async def test_checkpoint_of_more_than_100_events(store: Store) -> None:
    history = [event(12)] + [event(4, i, Name=f"Step{i}", Input=None) for i in range(249)]
    await checkpoint(store, make_row("fan-out"), history[:10])
    await checkpoint(store, make_row("fan-out"), history, persisted=10)

    await assert_history(store, "fan-out", history)


async def test_new_execution_replaces_the_old_one(store: Store) -> None:
    old = [event(12)] + [event(4, i, Name="Old") for i in range(9)]
    await checkpoint(store, make_row("can"), old)

    new = [event(12), event(0, Name="OrderWorkflow", Input='"again"'), event(13)]
    await checkpoint(store, make_row("can", execution_id="exec-2"), new, watermark="m9")

    stored = await store.read_history("can")
    assert stored is not None
    assert stored.execution_id == "exec-2"
    assert canonical(stored.events) == canonical(new)
    assert stored.inbox_watermark == "m9"


async def test_history_count_hides_a_half_written_checkpoint(
    store: Store, raw_connection: str | None
) -> None:
    history = [event(12), event(0, Name="OrderWorkflow", Input=None), event(4, 0, Name="A")]
    await checkpoint(store, make_row("crash"), history)
    # A crash after the rows of the next checkpoint but before its sentinel.
    orphans = [event(5, TaskScheduledId=0, Result=f'"orphan {i}"') for i in range(5)]
    await write_orphan_rows(store, raw_connection, "crash", "exec-1", len(history), orphans)

    await assert_history(store, "crash", history)

    # The retried checkpoint writes fewer rows than the crash left: the rest stays hidden.
    retried = history + [event(5, TaskScheduledId=0, Result='"real"'), event(13)]
    await checkpoint(store, make_row("crash"), retried, persisted=len(history))
    await assert_history(store, "crash", retried)


async def test_reads_of_unknown_instances_return_none(store: Store) -> None:
    assert await store.read_instance("nobody") is None
    assert await store.read_history("nobody") is None


async def test_stored_state_is_independent_of_callers_objects(store: Store) -> None:
    history = every_event_type("iso")
    expected = copy.deepcopy(history)
    row = make_row("iso")
    await checkpoint(store, row, history)

    history[1]["OrchestrationInstance"]["InstanceId"] = "changed"
    history.append(event(13))
    row.runtime_status = "Failed"
    read = await store.read_history("iso")
    assert read is not None
    read.events[0]["EventType"] = 99

    await assert_history(store, "iso", expected)
    stored_row = await store.read_instance("iso")
    assert stored_row is not None and stored_row.runtime_status == "Running"


# -- durable inbox ------------------------------------------------------------------------------


def message(msg_id: str, instance_id: str, **body: Any) -> StoredMessage:
    return StoredMessage(msg_id=msg_id, instance_id=instance_id, body={"kind": "event", **body})


async def test_messages_put_read_delete(store: Store) -> None:
    sent = [
        message("0003", "a", n=3),
        message("0001", "b/1", n=1, payload="z" * 100_000),  # body goes through a blob
        message("0002", "c#2", n=2, text="ünïcødé ✓ <&>"),
    ]
    for item in sent:
        await store.put_message(item)
        assert item.receipt is not None

    read = await store.read_messages()
    assert [m.msg_id for m in read] == ["0001", "0002", "0003"]
    by_id = {m.msg_id: m for m in sent}
    assert [(m.instance_id, m.body) for m in read] == [
        (by_id[m.msg_id].instance_id, by_id[m.msg_id].body) for m in read
    ]

    await store.delete_messages(read[:2])
    remaining = await store.read_messages()
    assert [(m.msg_id, m.body) for m in remaining] == [("0003", sent[0].body)]

    await store.delete_messages(read)  # two already gone: ignored
    assert await store.read_messages() == []


async def test_messages_are_redelivered_until_deleted(store: Store) -> None:
    first = message("0001", "a")
    second = message("0002", "b", payload="q" * 60_000)
    await store.put_message(first)
    await store.put_message(second)

    initial = await store.read_messages()
    again = await store.read_messages()  # a restart reads everything once more
    assert [m.msg_id for m in initial] == [m.msg_id for m in again] == ["0001", "0002"]

    # Receipts from before the re-reads still delete (the store tracks the latest one).
    await store.delete_messages([first])
    assert [m.msg_id for m in await store.read_messages()] == ["0002"]
    await store.delete_messages([initial[1]])
    assert await store.read_messages() == []


async def test_a_message_sent_twice_is_read_once(store: Store) -> None:
    """A send resent after its answer was lost stores a second copy under the same ``msg_id``:
    it is read once, the copy is removed, and a large body stays readable."""
    small = message("0001", "a", n=1)
    large = message("0002", "b", payload="p" * 60_000)
    for item in (small, large):
        await store.put_message(copy.deepcopy(item))
        await store.put_message(item)

    expected = [("0001", small.body), ("0002", large.body)]
    assert [(m.msg_id, m.body) for m in await store.read_messages()] == expected
    again = await store.read_messages()  # a restart: the copies are gone, the bodies are not
    assert [(m.msg_id, m.body) for m in again] == expected
    await store.delete_messages(again)
    assert await store.read_messages() == []


# -- queries ------------------------------------------------------------------------------------


async def seed_instances(store: Store) -> dict[str, InstanceRow]:
    rows = {
        "order-1": make_row("order-1", runtime_status="Running"),
        "order-2": make_row(
            "order-2", runtime_status="Completed", created_time=T0 + timedelta(hours=1)
        ),
        "order-3": make_row(
            "order-3", runtime_status="Failed", created_time=T0 + timedelta(hours=2)
        ),
        "order/4": make_row("order/4", runtime_status="Pending", name="Other"),
        "order-ü": make_row("order-ü", runtime_status="Suspended"),
        "ship-1": make_row("ship-1", runtime_status="Completed", name="ShipWorkflow"),
        "@counter@k": make_row("@counter@k", runtime_status="Running", name="@counter@k"),
    }
    for row in rows.values():
        await checkpoint(store, row, [event(12)])
    return rows


async def ids(store: Store, query: InstanceQuery) -> set[str]:
    rows, token = await store.query_instances(query, top=100, continuation=None)
    assert token is None
    return {row.instance_id for row in rows}


async def test_query_filters(store: Store) -> None:
    rows = await seed_instances(store)

    assert await ids(store, InstanceQuery()) == set(rows)
    assert await ids(store, InstanceQuery(runtime_status=["Completed", "Failed"])) == {
        "order-2",
        "order-3",
        "ship-1",
    }
    # Bounds are inclusive.
    assert await ids(
        store,
        InstanceQuery(created_from=T0 + timedelta(hours=1), created_to=T0 + timedelta(hours=2)),
    ) == {"order-2", "order-3"}
    assert await ids(store, InstanceQuery(instance_id_prefix="order-")) == {
        "order-1",
        "order-2",
        "order-3",
        "order-ü",
    }
    assert await ids(store, InstanceQuery(instance_id_prefix="order/")) == {"order/4"}
    assert await ids(store, InstanceQuery(name="ShipWorkflow")) == {"ship-1"}
    assert await ids(
        store,
        InstanceQuery(
            runtime_status=["Completed"], instance_id_prefix="order", name="OrderWorkflow"
        ),
    ) == {"order-2"}
    found, _ = await store.query_instances(InstanceQuery(instance_id_prefix="order/"), 10, None)
    assert found == [rows["order/4"]]


async def test_query_pages_with_continuation_tokens(store: Store) -> None:
    expected = {f"bulk-{i:03d}" for i in range(130)}
    for instance_id in sorted(expected):
        status = "Completed" if int(instance_id[-3:]) % 2 else "Running"
        await checkpoint(store, make_row(instance_id, runtime_status=status), [event(12)])

    async def all_pages(query: InstanceQuery, top: int) -> list[list[str]]:
        pages: list[list[str]] = []
        token: str | None = None
        while True:
            rows, token = await store.query_instances(query, top=top, continuation=token)
            pages.append([row.instance_id for row in rows])
            if token is None:
                return pages
            assert isinstance(token, str)

    pages = await all_pages(InstanceQuery(), top=50)
    assert [len(page) for page in pages] == [50, 50, 30]
    assert sorted(sum(pages, [])) == sorted(expected)

    completed = await all_pages(InstanceQuery(runtime_status=["Completed"]), top=40)
    assert all(len(page) <= 40 for page in completed)
    assert sorted(sum(completed, [])) == sorted(i for i in expected if int(i[-3:]) % 2)


async def test_an_invalid_continuation_token_is_rejected(store: Store) -> None:
    with pytest.raises(ValueError, match="continuation token"):
        await store.query_instances(InstanceQuery(), top=10, continuation="not a token!")


# -- purge --------------------------------------------------------------------------------------


async def test_delete_instance_removes_everything(store: Store) -> None:
    history = every_event_type("gone/1") + [event(5, TaskScheduledId=0, Result=BIG_ASCII)]
    await checkpoint(store, make_row("gone/1", input=BIG_ASCII), history)
    await checkpoint(store, make_row("gone/10"), [event(12)])  # shares the prefix "gone/1"

    assert await store.delete_instance("gone/1") is True

    assert await store.read_instance("gone/1") is None
    assert await store.read_history("gone/1") is None
    assert await ids(store, InstanceQuery(instance_id_prefix="gone/")) == {"gone/10"}
    assert await store.delete_instance("gone/1") is False
    await assert_history(store, "gone/10", [event(12)])


async def test_delete_instance_removes_a_history_of_several_transactions(store: Store) -> None:
    long = [event(4, number, Name="step") for number in range(230)]  # three transactions
    await checkpoint(store, make_row("long/1", runtime_status="Completed"), long)
    await checkpoint(store, make_row("long/2"), [event(12)])

    assert await store.delete_instance("long/1") is True

    assert await store.read_history("long/1") is None
    assert await store.read_instance("long/1") is None
    await assert_history(store, "long/2", [event(12)])


async def test_delete_instance_finishes_a_purge_cut_short(store: Store) -> None:
    # A crash after the history rows went and before the instance row did: the retry removes
    # the row and says it removed something; the next finds nothing.
    await store.write_row(make_row("cut/2", runtime_status="Completed"))

    assert await store.delete_instance("cut/2") is True
    assert await store.read_instance("cut/2") is None
    assert await store.delete_instance("cut/2") is False


# -- key sanitation -----------------------------------------------------------------------------

AWKWARD_IDS = ["a/b", "a\\b", "a#b", "a?b", "a^b", "a^0b", "^", "tab\tand\x7f", "é/ü", "o'brien"]


async def test_ids_with_characters_keys_cannot_hold(store: Store) -> None:
    for number, instance_id in enumerate(AWKWARD_IDS):
        await checkpoint(store, make_row(instance_id, name=f"N{number}"), [event(12, number)])

    for number, instance_id in enumerate(AWKWARD_IDS):
        row = await store.read_instance(instance_id)
        assert row is not None and row.instance_id == instance_id and row.name == f"N{number}"
        await assert_history(store, instance_id, [event(12, number)])
    assert await ids(store, InstanceQuery()) == set(AWKWARD_IDS)
    assert await ids(store, InstanceQuery(instance_id_prefix="a^")) == {"a^b", "a^0b"}
    assert await ids(store, InstanceQuery(instance_id_prefix="a/")) == {"a/b"}

    assert await store.delete_instance("a/b") is True
    assert await store.read_instance("a^0b") is not None


# -- operation counting -------------------------------------------------------------------------


async def test_count_operations_counts_storage_calls(store: Store) -> None:
    before = await store.count_operations()
    await checkpoint(store, make_row("ops"), every_event_type("ops"))
    await store.read_instance("ops")
    assert await store.count_operations() > before


# -- Azure Storage layout (protocol notes §8) ---------------------------------------------------


@pytest.fixture
async def azure_store(azurite: AzuriteProcess, task_hub: str) -> AsyncIterator[AzureStore]:
    store = AzureStore(azurite.connection_string, task_hub)
    await store.open()
    yield store
    await store.close()


async def history_rows(connection: str, hub: str, instance_id: str) -> list[dict[str, Any]]:
    async with TableServiceClient.from_connection_string(connection) as service:
        table = service.get_table_client(f"{hub}History")
        query = f"PartitionKey eq '{sanitize_key(instance_id)}'"
        return [dict(entity) async for entity in table.query_entities(query)]


async def read_blob(connection: str, container: str, name: str) -> str:
    async with BlobServiceClient.from_connection_string(connection) as service:
        downloader = await service.get_blob_client(container, name).download_blob()
        return gzip.decompress(await downloader.readall()).decode()


async def blob_names(connection: str, container: str) -> list[str]:
    async with BlobServiceClient.from_connection_string(connection) as service:
        return [b.name async for b in service.get_container_client(container).list_blobs()]


@pytest.mark.azurite
async def test_tables_follow_the_durable_task_layout(
    azure_store: AzureStore, azurite: AzuriteProcess, task_hub: str
) -> None:
    history = every_event_type("lay/out")
    row = make_row(
        "lay/out",
        runtime_status="Completed",
        output='"done"',
        custom_status='{"s":1}',
        completed_time=T0,
    )
    await checkpoint(azure_store, row, history, watermark="m5")

    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        instance = await service.get_table_client(f"{task_hub}Instances").get_entity("lay^0out", "")
    assert instance["RuntimeStatus"] == "Completed"
    assert instance["TaskHubName"] == task_hub
    assert instance["ExecutionId"] == "exec-1"
    assert (instance["Input"], instance["Output"], instance["CustomStatus"]) == (
        row.input,
        '"done"',
        '{"s":1}',
    )
    assert instance["CreatedTime"] == T0

    rows = await history_rows(azurite.connection_string, task_hub, "lay/out")
    assert [r["RowKey"] for r in rows] == [f"{i:016X}" for i in range(len(history))] + ["sentinel"]
    assert [r["EventType"] for r in rows[:2]] == ["OrchestratorStarted", "ExecutionStarted"]
    started = rows[1]
    assert started["_Timestamp"] == TS and "Timestamp" not in started
    assert json.loads(started["OrchestrationInstance"]) == {
        "InstanceId": "lay/out",
        "ExecutionId": "exec-1",
    }
    assert all(r["ExecutionId"] == "exec-1" for r in rows)
    completed = next(r for r in rows if r.get("EventType") == "ExecutionCompleted")
    assert completed["OrchestrationStatus"] == "Completed"
    sentinel = rows[-1]
    assert sentinel["IsCheckpointComplete"] is True
    assert sentinel["HistoryCount"] == len(history)
    assert sentinel["InboxWatermark"] == "m5"
    assert isinstance(sentinel["CheckpointCompletedTimestamp"], datetime)


@pytest.mark.azurite
async def test_large_values_go_to_gzip_blobs(
    azure_store: AzureStore, azurite: AzuriteProcess, task_hub: str
) -> None:
    conn = azurite.connection_string
    container = f"{task_hub.lower()}-largemessages"
    # Twenty 60 KB strings: each fits a property, together they exceed an entity's 1 MiB.
    parts = {f"Part{i:02d}": "m" * 30_000 for i in range(20)}
    history = [event(12), event(5, TaskScheduledId=0, Result=BIG_UNICODE), event(17, **parts)]
    await checkpoint(azure_store, make_row("big#1", input=BIG_ASCII), history)

    rows = await history_rows(conn, task_hub, "big#1")
    inline = [column for column in parts if column in rows[2]]
    moved = [column for column in parts if column + "BlobName" in rows[2]]
    assert sorted(inline + moved) == sorted(parts) and moved and inline
    assert sum(2 * len(rows[2][column]) for column in inline) < 1024 * 1024
    result_row = rows[1]
    assert "Result" not in result_row
    assert result_row["ResultBlobName"] == "big^21/history-exec-1-0000000000000001-Result.json.gz"
    assert await read_blob(conn, container, result_row["ResultBlobName"]) == BIG_UNICODE
    async with TableServiceClient.from_connection_string(conn) as service:
        instance = await service.get_table_client(f"{task_hub}Instances").get_entity("big^21", "")
    assert "Input" not in instance
    assert instance["InputBlobName"] == "big^21/instance-Input.json.gz"
    assert await read_blob(conn, container, "big^21/instance-Input.json.gz") == BIG_ASCII

    assert await azure_store.delete_instance("big#1")
    assert await blob_names(conn, container) == []


@pytest.mark.azurite
async def test_messages_use_the_control_queue_of_the_instance(
    azure_store: AzureStore, azurite: AzuriteProcess, task_hub: str
) -> None:
    conn = azurite.connection_string
    small = message("0001", "order-7", n=1)
    large = message("0002", "order-7", payload="p" * 60_000)
    await azure_store.put_message(small)
    await azure_store.put_message(large)

    queue_name = f"{task_hub.lower()}-control-{control_queue_index('order-7'):02d}"
    async with QueueServiceClient.from_connection_string(conn) as service:
        peeked = await service.get_queue_client(queue_name).peek_messages(max_messages=32)
    contents = [json.loads(m.content) for m in peeked]
    assert contents[0] == {"msgId": "0001", "instanceId": "order-7", "body": small.body}
    blob_name = "order-7/message-0002.json.gz"
    assert contents[1] == {"msgId": "0002", "instanceId": "order-7", "bodyBlob": blob_name}
    container = f"{task_hub.lower()}-largemessages"
    assert json.loads(await read_blob(conn, container, blob_name)) == large.body

    await azure_store.delete_messages([small, large])
    assert await blob_names(conn, container) == []


@pytest.mark.azurite
async def test_write_path_request_counts(azure_store: AzureStore) -> None:
    """The engine's budget: a checkpoint of up to 99 new small events costs 2 requests, 1
    without its row."""

    async def cost(call: Any) -> int:
        before = await azure_store.count_operations()
        await call
        return await azure_store.count_operations() - before

    history = every_event_type("cost")
    assert await cost(checkpoint(azure_store, make_row("cost"), history[:5])) == 2
    assert await cost(checkpoint(azure_store, make_row("cost"), history, persisted=5)) == 2
    more = [*history, event(12), event(13)]
    lagging = Checkpoint(make_row("cost"), more, len(history), with_row=False)
    assert await cost(azure_store.write_checkpoint(lagging)) == 1
    item = message("0001", "cost")
    assert await cost(azure_store.write_row(make_row("cost"))) == 1
    assert await cost(azure_store.put_message(item)) == 1
    assert await cost(azure_store.delete_messages([item])) == 1
    assert await cost(azure_store.read_instance("cost")) == 1
    assert await cost(azure_store.read_history("cost")) == 1


@pytest.mark.azurite
async def test_a_rejected_transaction_raises(azure_store: AzureStore) -> None:
    # A partition key over 1 KiB: the service fails the transaction inside a 202 response.
    with pytest.raises(HttpResponseError, match="history transaction .* failed: statuses"):
        await checkpoint(azure_store, make_row("k" * 2000), [event(12)])


@pytest.mark.azurite
@pytest.mark.parametrize("committed", [0, 1, 2])
async def test_a_new_execution_written_in_several_transactions_leaves_one_execution_whole(
    azure_store: AzureStore, committed: int
) -> None:
    """A new execution's first write over a stored one (a continue-as-new carrying over 200
    events) needs three transactions. A crash after any of them leaves a history that reads
    whole: the stored execution until the sentinel names the new one, then the new one.
    Before, the first transaction replaced the stored execution's rows and a crash after it
    left no history at all."""
    stored = [event(4, number, Name="stored") for number in range(10)]
    wider = [event(4, number, Name="new") for number in range(230)]
    await checkpoint(azure_store, make_row("wide/1"), stored)
    sent = 0
    real_submit = azure_store._submit

    async def crashing_submit(batch: list[Any], inserted: set[str]) -> None:
        nonlocal sent
        sent += 1
        if sent > committed:
            raise ConnectionResetError("killed")
        await real_submit(batch, inserted)

    azure_store._submit = crashing_submit  # type: ignore[method-assign]
    new_execution = make_row("wide/1", execution_id="exec-2")
    with pytest.raises(ConnectionResetError):
        await azure_store.write_checkpoint(Checkpoint(new_execution, wider, 0, stored_rows=10))
    azure_store._submit = real_submit  # type: ignore[method-assign]

    read = await azure_store.read_history("wide/1")
    assert read is not None and read.execution_id == "exec-1"
    assert [e["Name"] for e in read.events] == ["stored"] * 10

    await azure_store.write_checkpoint(Checkpoint(new_execution, wider, 0, stored_rows=230))
    read = await azure_store.read_history("wide/1")
    assert read is not None and read.execution_id == "exec-2"
    assert [e["Name"] for e in read.events] == ["new"] * 230


# -- layout helpers -----------------------------------------------------------------------------


def test_key_sanitation_matches_durable_task() -> None:
    raw = "a/b\\c#d?e^f\x01\x7f\x9fé"
    assert sanitize_key(raw) == "a^0b^1c^2d^3e^^f^\u00c1^\u013f^\u015fé"
    assert sanitize_key("plain-id_1") == "plain-id_1"
    for key in [raw, *AWKWARD_IDS, "^^0", "x^"]:
        assert unsanitize_key(sanitize_key(key)) == key


def test_control_queue_hash_is_fnv1a_of_utf8() -> None:
    # Published FNV-1a 32-bit test vectors; a modulus of 2**32 exposes the whole hash.
    assert control_queue_index("", 2**32) == 0x811C9DC5
    assert control_queue_index("a", 2**32) == 0xE40C292C
    assert control_queue_index("foobar", 2**32) == 0xBF9CF968
    assert control_queue_index("foobar") == 0xBF9CF968 % 4


def test_development_storage_connection_string() -> None:
    for shorthand in ["UseDevelopmentStorage=true", " usedevelopmentstorage = TRUE ;"]:
        assert is_development_storage(shorthand)
        expanded = expand_connection_string(shorthand)
        assert "AccountName=devstoreaccount1;" in expanded
        assert "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;" in expanded
        assert "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;" in expanded
        assert "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;" in expanded
    explicit = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;"
    assert not is_development_storage(explicit)
    assert not is_development_storage("UseDevelopmentStorage=false")
    assert expand_connection_string(explicit) == explicit


def test_events_with_storage_column_names_are_refused() -> None:
    with pytest.raises(ValueError, match="collides"):
        event_to_entity({"EventType": 12, "ExecutionId": "x"})


def test_write_transaction_body_matches_the_tables_wire_format() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    entity = {"PartitionKey": "o'brien^0x", "RowKey": "sentinel", "N": (2**40, EdmType.INT64)}
    entity.update(D=when, F=0.5, B=True, S="é")
    content_type, body = write_transaction("http://h:1/acct/", "HubHistory", [table_row(entity)])

    batch = content_type.removeprefix("multipart/mixed; boundary=")
    text = body.decode("ascii")
    assert text.startswith(f"--{batch}\r\nContent-Type: multipart/mixed; boundary=changeset_")
    assert text.endswith(f"--{batch}--\r\n")
    request_line = (
        "PUT http://h:1/acct/HubHistory(PartitionKey='o%27%27brien%5E0x',RowKey='sentinel') "
        "HTTP/1.1\r\n"
    )
    assert request_line in text
    json_text = text.split("\r\n\r\n")[3].split("\r\n")[0]
    assert f"Content-Length: {len(json_text)}\r\n" in text
    assert json.loads(json_text) == {
        "PartitionKey": "o'brien^0x",
        "RowKey": "sentinel",
        "N": "1099511627776",
        "N@odata.type": "Edm.Int64",
        "D": "2024-01-02T03:04:05.000006Z",
        "D@odata.type": "Edm.DateTime",
        "F": 0.5,
        "F@odata.type": "Edm.Double",
        "B": True,
        "S": "é",
    }


def test_a_row_known_to_be_new_is_inserted_in_the_transaction() -> None:
    """As the SDK's ``create`` operation sends it (a POST to the table, the keys in the body),
    asking for no copy of the row in the answer."""
    rows = [{"PartitionKey": "p", "RowKey": key, "N": 1} for key in ("0", "1", "sentinel")]
    _, body = write_transaction(
        "http://h:1/acct/", "HubHistory", [table_row(row) for row in rows], inserted={"0", "1"}
    )

    text = body.decode("ascii")
    assert text.count("POST http://h:1/acct/HubHistory HTTP/1.1\r\nPrefer: return-no-content") == 2
    assert text.count("PUT http://h:1/acct/HubHistory(") == 1
    assert "RowKey='sentinel'" in text
    assert '{"PartitionKey":"p","RowKey":"0","N":1}' in text
