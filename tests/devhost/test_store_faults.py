"""Storage faults under the engine (memory store): the host retries what is transient, rides out
an outage while serving what it can, reports it once, and loses nothing."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

from devhost.engine.history import EventType
from devhost.store.azure_layout import table_row, write_transaction
from devhost.store.base import Store, StoredMessage
from devhost.store.faults import (
    FAULT_KINDS,
    FaultInjector,
    FaultPlan,
    FaultyStore,
    request_key,
)
from devhost.store.memory import MemoryStore
from devhost.store.retrying import RetryingStore, StorageUnavailable, is_transient
from devhost.testing import DurableTestHost
from tests.devhost.apps import gated, mixed_work
from tests.waiting import eventually

HUB = "faultshub"


def WAITING(status: Any) -> bool:  # noqa: N802 (reads as a constant at the call site)
    return bool(status == "waiting")


def _status_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"HTTP {status}")
    error.status_code = status
    return error


def _quick(inner: Store, **options: Any) -> RetryingStore:
    """A retrying store with millisecond backoff, so a test spends its time on work."""
    return RetryingStore(inner, first_delay=0.001, max_delay=0.01, rng=random.Random(1), **options)


@pytest.mark.parametrize(
    "error",
    [
        _status_error(503),
        _status_error(500),
        _status_error(502),
        _status_error(504),
        _status_error(408),
        _status_error(429),
        ServiceRequestError("connection refused"),
        ServiceResponseError("connection reset after sending"),
        ServiceResponseTimeoutError("read timed out"),
        IncompleteReadError("body cut short"),
        ConnectionResetError(),
        TimeoutError(),
    ],
    ids=lambda error: f"{type(error).__name__}-{getattr(error, 'status_code', '')}",
)
def test_failures_that_may_pass_are_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ResourceNotFoundError("404"),
        ResourceExistsError("409"),
        ResourceModifiedError("412"),
        ClientAuthenticationError("403"),
        _status_error(400),
        _status_error(501),
        _status_error(505),
        StorageUnavailable("write_row"),
        ValueError("a bug"),
        KeyError("a bug"),
    ],
    ids=lambda error: f"{type(error).__name__}-{getattr(error, 'status_code', '')}",
)
def test_answers_and_bugs_are_not_transient(error: BaseException) -> None:
    assert not is_transient(error)


def test_the_same_seed_meets_the_same_faults() -> None:
    keys = [f"write_checkpoint i{n % 7}" for n in range(400)]

    def run(seed: int) -> list[Any]:
        injector = FaultInjector(FaultPlan(seed=seed, rate=0.3, slow_rate=0.1))
        return [injector.decide(key) for key in keys]

    first = run(11)
    assert first == run(11)
    assert first != run(12)
    assert set(first) == {None, "slow", *FAULT_KINDS}
    # Interleaving other requests does not change what one key meets.
    injector = FaultInjector(FaultPlan(seed=11, rate=0.3, slow_rate=0.1))
    mixed = []
    for key in keys:
        injector.decide("read_instance other")
        mixed.append(injector.decide(key))
    assert mixed == first


async def test_workflows_finish_through_storage_faults_and_storage_agrees() -> None:
    """A third of all storage calls fail (every kind) and some are slow: every acknowledged
    start and event takes effect once, and what is stored matches."""
    injector = FaultInjector(
        FaultPlan(seed=5, rate=0.3, slow_rate=0.1, slow_seconds=0.005, timeout_seconds=0.005)
    )
    memory = MemoryStore(HUB)
    store = _quick(FaultyStore(memory, injector))
    starts = {f"mixed-{n}": n for n in range(12)}
    async with DurableTestHost(index=mixed_work.INDEX, store=store, task_hub=HUB) as host:
        for instance_id, number in starts.items():
            await host.start("mixed", number, instance_id=instance_id)
        for instance_id in starts:
            await host.wait_for_custom_status(instance_id, WAITING, timeout=30)
        for instance_id in starts:
            await host.raise_event(instance_id, "Approve", instance_id, as_client=False)
        results = {instance_id: await host.wait(instance_id, 30) for instance_id in starts}

    for instance_id, number in starts.items():
        assert results[instance_id]["runtimeStatus"] == "Completed", results[instance_id]
        assert results[instance_id]["output"] == mixed_work.expected_output(number, instance_id)
    kinds = injector.counts()
    assert all(kinds[kind] for kind in FAULT_KINDS), kinds
    assert store.retries >= sum(kinds[kind] for kind in FAULT_KINDS)

    # A restart on the same storage finds nothing to do and nothing left over.
    async with DurableTestHost(index=mixed_work.INDEX, store=memory, task_hub=HUB) as again:
        await again.idle()
        assert again.engine.episodes == 0
    assert await memory.read_messages() == []
    for instance_id in [*starts, *(f"{i}-child" for i in starts)]:
        row = memory.instances[instance_id]
        history = memory.histories[instance_id]
        events = history.rows[: history.history_count]
        assert row.runtime_status == "Completed"
        assert row.execution_id == history.execution_id
        assert [e["EventType"] for e in events].count(EventType.ExecutionStarted) == 1
        assert [e["EventType"] for e in events].count(EventType.ExecutionCompleted) == 1


class _Answering(MemoryStore):
    """A memory store whose ``read_instance`` answers with an error, counting the calls."""

    def __init__(self, error: Exception) -> None:
        super().__init__(HUB)
        self.error = error
        self.calls = 0

    async def read_instance(self, instance_id: str) -> Any:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ResourceNotFoundError("gone"),
        ResourceExistsError("conflict"),
        ResourceModifiedError("precondition failed"),
        _status_error(400),
    ],
    ids=["404", "409", "412", "400"],
)
async def test_an_answer_is_never_retried(error: Exception) -> None:
    inner = _Answering(error)
    with pytest.raises(type(error)):
        await _quick(inner).read_instance("x")
    assert inner.calls == 1


async def test_a_send_whose_answer_was_lost_is_read_back_once() -> None:
    """The answer to a message's send is lost after the message was stored: the retry stores a
    second copy, and a restart's read returns the message once and removes the copy."""
    injector = FaultInjector(FaultPlan())
    memory = MemoryStore(HUB)
    store = _quick(FaultyStore(memory, injector))
    injector.force("put_message order-1", "lost")
    message = StoredMessage("0001", "order-1", {"kind": "event", "n": 1})
    await store.put_message(message)

    assert len(memory._messages) == 2  # stored, answer lost, sent again
    read = await store.read_messages()
    assert [(m.msg_id, m.body) for m in read] == [("0001", message.body)]
    await store.delete_messages(read)
    assert await memory.read_messages() == []


async def test_a_purge_retried_after_its_answer_was_lost_still_counts_the_instance() -> None:
    """The store deletes the instance and the answer is lost; the retried call finds nothing:
    the purge still says one instance was deleted, and it is gone."""
    from tests.devhost.apps.sequences import INDEX

    injector = FaultInjector(FaultPlan())
    async with DurableTestHost(
        index=INDEX, store=_quick(FaultyStore(MemoryStore(HUB), injector))
    ) as host:
        status = await host.run("hello_sequence")
        instance_id = status["instanceId"]
        injector.force(f"delete_instance {instance_id}", "lost")

        assert await host.engine.purge(instance_id) == 1

        assert [fault.kind for fault in injector.injected] == ["lost"]
        assert await host.status(instance_id) is None


async def test_an_outage_is_ridden_out_reported_once_and_loses_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Storage goes down with work in flight. Status is answered from memory, starts answer
    503 with Retry-After (fast: storage is known to be down), the log says so once; when
    storage is back, everything acknowledged finishes without a restart."""
    caplog.set_level(logging.WARNING, logger="devhost.store")
    injector = FaultInjector(FaultPlan())
    memory = MemoryStore(HUB)
    store = _quick(FaultyStore(memory, injector), patience=5.0, background_patience=0.5)
    store.health.outage_after = 0.2
    async with DurableTestHost(index=mixed_work.INDEX, store=store, task_hub=HUB) as host:
        http = await host.http()
        before = [f"before-{n}" for n in range(5)]
        for number, instance_id in enumerate(before):
            await host.start("mixed", number, instance_id=instance_id)
        for instance_id in before:
            await host.wait_for_custom_status(instance_id, WAITING, timeout=30)

        injector.take_down()
        slowest = 0.0
        for refused in range(20):
            for instance_id in before:  # status of running instances comes from memory
                response = await http.get(f"/runtime/webhooks/durabletask/instances/{instance_id}")
                assert response.status == 202, await response.text()
            started = time.monotonic()
            response = await http.post(
                f"/runtime/webhooks/durabletask/orchestrators/mixed/during-{refused}", json=1
            )
            slowest = max(slowest, time.monotonic() - started)
            assert response.status == 503, await response.text()
            assert response.headers["Retry-After"] == "5"
            body = await response.json()
            assert "unavailable" in body["Message"] and "Traceback" not in str(body)
        # Once storage is known to be down, a start is refused after one attempt, not after
        # retrying for its patience (5 s). Each start is timed on its own: twenty rounds of
        # requests on a loaded machine may take longer than 5 s together.
        assert slowest < 2.5, f"a start during the outage took {slowest:.1f} s to be refused"

        injector.bring_up()
        for instance_id in before:
            await host.raise_event(instance_id, "Approve", "late", as_client=False)
        after = await host.start("mixed", 9, instance_id="after")
        await host.raise_event(after, "Approve", "late", as_client=False)
        for instance_id in [*before, after]:
            status = await host.wait(instance_id, 30)
            assert status["runtimeStatus"] == "Completed", status
        during = await http.get("/runtime/webhooks/durabletask/instances/during-0")
        assert during.status == 404  # a refused start left nothing behind

    lines = [r.getMessage() for r in caplog.records if r.name == "devhost.store"]
    assert sum("unavailable" in line for line in lines) == 1, lines
    assert sum("available again" in line for line in lines) == 1, lines
    assert memory.instances["after"].runtime_status == "Completed"
    assert all(memory.instances[i].runtime_status == "Completed" for i in before)


async def test_status_of_an_instance_that_finished_during_an_outage_is_503_not_a_hang(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An instance ends while storage is down: its end cannot be stored, so its status is not
    shown from memory; the client gets 503 with Retry-After after one failed write of its own
    (not after the group commit's long patience), the engine logs no traceback per failed
    checkpoint, and once storage is back the status is the stored end."""
    caplog.set_level(logging.DEBUG, logger="devhost.engine")
    injector = FaultInjector(FaultPlan())
    memory = MemoryStore(HUB)
    # The group commit rides an outage out for a minute: a status read must not wait for it.
    store = _quick(FaultyStore(memory, injector), patience=5.0, background_patience=60.0)
    store.health.outage_after = 0.2
    gated.GATE.clear()
    async with DurableTestHost(index=gated.INDEX, store=store, task_hub=HUB) as host:
        http = await host.http()
        url = "/runtime/webhooks/durabletask/instances/gated-1"
        await host.start("gated", 1, instance_id="gated-1")
        await host.engine.checkpoint()
        injector.take_down()
        gated.GATE.set()
        await eventually(
            lambda: host.engine.instances["gated-1"].is_terminal,
            "the instance to finish in memory",
        )
        # The group commit's write of that end was refused and is being tried again.
        await eventually(
            lambda: sum(f.key == "write_checkpoint gated-1" for f in injector.injected) >= 2,
            "the group commit to retry the write of the instance's end through the outage",
        )
        for _ in range(3):
            started = time.monotonic()
            try:
                response = await asyncio.wait_for(http.get(url), 20)
            except TimeoutError:
                pytest.fail("the status read waited for storage to come back")
            assert response.status == 503, await response.text()
            assert response.headers["Retry-After"] == "5"
            assert time.monotonic() - started < 10
        listing = await asyncio.wait_for(http.get("/runtime/webhooks/durabletask/instances"), 20)
        assert listing.status == 503, await listing.text()

        injector.bring_up()
        deadline = time.monotonic() + 30
        while True:
            response = await http.get(url)
            if response.status == 200 or time.monotonic() > deadline:
                break
            assert response.status == 503, await response.text()
            await asyncio.sleep(0.1)
        body = await response.json()
        assert (response.status, body["runtimeStatus"], body["output"]) == (200, "Completed", 2)
    assert memory.instances["gated-1"].runtime_status == "Completed"
    tracebacks = [r for r in caplog.records if r.name == "devhost.engine" and r.exc_info]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]


async def test_checkpoints_failing_through_an_outage_back_off_without_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An outage longer than a checkpoint's patience: the group commit tries again with a
    growing pause and logs no traceback per attempt (the store reports the outage once), and
    writes what waited once storage is back."""
    caplog.set_level(logging.DEBUG, logger="devhost.engine")
    injector = FaultInjector(FaultPlan())
    memory = MemoryStore(HUB)
    store = _quick(FaultyStore(memory, injector), patience=5.0, background_patience=0.2)
    store.health.outage_after = 0.1
    gated.GATE.clear()
    async with DurableTestHost(index=gated.INDEX, store=store, task_hub=HUB) as host:
        await host.start("gated", 1, instance_id="gated-2")
        await host.engine.checkpoint()
        injector.take_down()
        gated.GATE.set()

        def pauses() -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if "Checkpoint failed, retrying" in r.getMessage()
            ]

        await eventually(pauses, "the first failed checkpoint to pause")
        await asyncio.sleep(4.0)  # a window counted from that first pause
        tracebacks = [r for r in caplog.records if r.name == "devhost.engine" and r.exc_info]
        assert tracebacks == [], [r.getMessage() for r in tracebacks]
        # 0.2 s of patience per attempt, then pauses of 0.5, 1, 2 s...: a handful, not one
        # every half second.
        assert 1 <= len(pauses()) <= 5, pauses()
        injector.bring_up()
        # Until a write succeeds again the host still knows storage as down, and a client's
        # wait for the end answers 503 (the group commit's next try, at most 8 s away, finds
        # it back).
        await eventually(lambda: not store.is_down(), "the host to find storage back")
        status = await host.wait("gated-2", 30)
        assert status["runtimeStatus"] == "Completed", status
    assert memory.instances["gated-2"].runtime_status == "Completed"


async def test_a_failed_call_keeps_trying_within_its_patience_then_gives_up() -> None:
    injector = FaultInjector(FaultPlan(seed=1, rate=1.0, kinds=("busy",)))
    store = _quick(FaultyStore(MemoryStore(HUB), injector), patience=0.3)
    store.health.outage_after = 60  # never known down: the call's own patience decides
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as raised:
        await store.read_instance("x")
    assert 0.25 < time.monotonic() - started < 3
    assert isinstance(raised.value.__cause__, HttpResponseError)
    assert store.retries > 5

    injector.plan = FaultPlan()
    assert await store.read_instance("x") is None


async def test_open_waits_for_storage_to_come_back() -> None:
    injector = FaultInjector(FaultPlan())
    store = _quick(FaultyStore(MemoryStore(HUB), injector))
    injector.take_down()
    opening = asyncio.create_task(store.open())
    await asyncio.sleep(0.3)
    assert not opening.done()
    injector.bring_up()
    await asyncio.wait_for(opening, 60)


async def test_the_apps_own_start_routes_answer_503_while_storage_is_down() -> None:
    """A start through the app's routes (the durable client inside a function) answers 503 with
    Retry-After in the app's error shape, not a 500, while storage is down; then it works."""
    injector = FaultInjector(FaultPlan())
    store = _quick(FaultyStore(MemoryStore(HUB), injector), background_patience=0.5)
    store.health.outage_after = 0.1
    async with DurableTestHost(".", store=store, task_hub=HUB) as host:
        http = await host.http()
        injector.take_down()
        body = {"cities": ["Tokyo"]}
        deadline = time.monotonic() + 60
        while True:  # the first calls spend outage_after finding out that storage is down
            response = await http.post("/api/orchestrators/hello_sequence", json=body)
            if response.status != 503 and time.monotonic() < deadline:
                assert response.status < 500, await response.text()
                continue
            break
        assert response.status == 503, await response.text()
        assert response.headers["Retry-After"] == "5"
        error = (await response.json())["error"]
        assert error["code"] == "StorageUnavailable" and "Traceback" not in error["message"]
        event = await http.post("/api/instances/nobody/events/Approve", json={})
        assert event.status in (404, 503), await event.text()

        injector.bring_up()
        response = await http.post("/api/orchestrators/hello_sequence", json=body)
        assert response.status == 202, await response.text()


def test_a_transactions_fault_key_names_its_partition_whichever_rows_it_holds() -> None:
    """A test forces faults on one instance's transactions by key: a transaction whose rows
    are all inserted (the partition named only in their bodies) has the same key as one that
    replaces them (named in their addresses), whatever characters the instance ID holds."""
    rows = [{"PartitionKey": 'o\'brien "x"', "RowKey": f"{n:016X}"} for n in range(3)]
    keys = {row["RowKey"] for row in rows}
    table_rows = [table_row(row) for row in rows]
    _, inserting = write_transaction("http://h:1/acct/", "HubHistory", table_rows, inserted=keys)
    _, replacing = write_transaction("http://h:1/acct/", "HubHistory", table_rows)

    named = {
        request_key(SimpleNamespace(method="POST", url="http://h:1/acct/$batch", body=body))
        for body in (inserting, replacing)
    }

    assert named == {"POST /acct/$batch o%27%27brien%20%22x%22"}
