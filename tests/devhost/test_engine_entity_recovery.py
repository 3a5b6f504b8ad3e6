"""Entities after a crash: an acknowledged signal is applied to the stored state exactly once.

Each test kills a first host at a chosen point (the store accepts no write after it, and the
host's memory is lost) and starts a second host on the same store.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from devhost.engine import entities
from devhost.engine.clock import VirtualClock
from devhost.store.base import Checkpoint, StoredMessage
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost, client_input
from tests.devhost.apps.counters import INDEX
from tests.durability.crash import CrashingMemoryStore, CrashPoint, EngineLife, life_that_crashes

TASK_HUB = "entityrecovery"


async def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


def _ended(checkpoint: Checkpoint) -> bool:
    return checkpoint.row.runtime_status == "Completed"


async def _counter(store: MemoryStore, key: str) -> Any:
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as host:
        await host.idle()
        exists, state = await host.engine.read_entity("Counter", key)
    assert exists
    return json.loads(state) if state is not None else None


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(TASK_HUB)


async def test_signal_acknowledged_but_never_applied_is_applied_after_restart(
    store: MemoryStore,
) -> None:
    async with life_that_crashes(INDEX, store) as first:
        first.point.stop_after(1)  # the signal's message, nothing after it
        await first.engine.signal_entity("Counter", "k1", "add", json.dumps(json.dumps(5)))

    assert await _counter(store, "k1") == 5


async def test_signal_applied_but_never_recorded_is_applied_once_after_restart(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as first:
        # The process dies after the entity ran: neither its state nor the inbox changes.
        monkeypatch.setattr(store, "write_checkpoint", _nothing)
        monkeypatch.setattr(store, "delete_messages", _nothing)
        await first.engine.signal_entity("Counter", "k2", "add", json.dumps(json.dumps(5)))
        await first.idle()
        assert (await first.engine.read_entity("Counter", "k2"))[1] == "5"  # applied in memory
    monkeypatch.undo()

    assert await _counter(store, "k2") == 5


async def test_signal_recorded_but_left_in_the_inbox_is_not_applied_twice(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as first:
        # The process dies after the state was written, before the message was deleted.
        monkeypatch.setattr(store, "delete_messages", _nothing)
        await first.engine.signal_entity("Counter", "k3", "add", json.dumps(json.dumps(5)))
        await first.idle()
    monkeypatch.undo()
    assert await store.read_messages(), "the signal should still be in the inbox"

    assert await _counter(store, "k3") == 5
    assert not await store.read_messages()  # redelivered, recognised, dropped


async def test_signal_sent_by_a_finished_orchestration_survives_a_crash(
    store: MemoryStore,
) -> None:
    # The host dies right after the orchestration's last checkpoint (which sent the signal
    # first), before the entity's state was written.
    async with life_that_crashes(INDEX, store, crash_after=_ended) as first:
        instance_id = await first.engine.start_new("signal_and_finish", None, client_input("k4"))
        status = await first.engine.wait_for_completion(instance_id, 60)
        assert status is not None and status["runtimeStatus"] == "Completed"
        assert await store.read_messages(), "the signal is in the entity's inbox"

    # The orchestration is over (nothing to recover there); the signal it recorded is not lost.
    assert await _counter(store, "k4") == 10


async def test_calls_and_signals_from_one_orchestration_arrive_in_order(
    store: MemoryStore,
) -> None:
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as host:
        status = await host.run("signal_then_read", "k5")
    assert status["output"] == 10


async def test_a_signal_whose_delete_failed_is_not_applied_again_once_the_entity_forgot_it(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Storage was away when the applied signal's message was to be deleted. The entity goes on
    # (more requests than it remembers the IDs of), then the host restarts: a message still in
    # the inbox then would be a request the entity does not know it applied.
    monkeypatch.setattr(entities, "_REMEMBERED_REQUESTS", 3)
    delete = store.delete_messages
    failed: list[int] = []

    async def fails_once(messages: list[StoredMessage]) -> None:
        if not failed:
            failed.append(len(messages))
            raise ConnectionError("storage is away")
        await delete(messages)

    monkeypatch.setattr(store, "delete_messages", fails_once)
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as first:
        for _ in range(6):
            await first.engine.signal_entity("Counter", "k9", "add", json.dumps(json.dumps(1)))
            await first.idle()
        await first.engine.checkpoint()
        deadline = time.monotonic() + 5  # for the failed delete to be sent again
        while await store.read_messages() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    assert failed, "the first delete should have failed"

    assert await _counter(store, "k9") == 6


class _DiesAfterTheFirstRequest(CrashingMemoryStore):
    """Dies right after the first entity request is in its inbox (signals go before the
    history that records them)."""

    async def put_message(self, message: StoredMessage) -> None:
        await super().put_message(message)
        if message.body["kind"] == "request":
            self.point.stop_after(0)


async def test_a_signal_from_a_generation_a_crash_took_back_is_applied_once(
    store: MemoryStore,
) -> None:
    # The event makes the orchestration continue as new, and the new generation's first
    # episode signals; the signal is stored, the checkpoint of both episodes is not. They run
    # again after the restart: the signal they send must be recognised as the one applied.
    point = CrashPoint()
    dying = _DiesAfterTheFirstRequest(store, point)
    life = EngineLife(INDEX, dying, point, VirtualClock(), task_hub=TASK_HUB)
    try:
        engine = life.engine
        await engine.start()
        await engine.start_new("signal_after_continuing", "twice", client_input("k10"))
        await engine.checkpoint()  # the first generation, waiting for "Go"
        await engine.raise_event("twice", "Go", None)
        deadline = time.monotonic() + 30
        while not point.crashed:
            assert time.monotonic() < deadline, "the signal was never sent"
            await asyncio.sleep(0.01)
    finally:
        await life.abandon()

    assert await _counter(store, "k10") == 1


async def test_a_signal_from_a_sub_orchestration_a_crash_took_back_is_applied_once(
    store: MemoryStore,
) -> None:
    # The parent's record of starting its child is stored, and the child's signal; the child's
    # own first checkpoint is not. The child is started again after the restart: the signal it
    # sends must be recognised as the one applied.
    point = CrashPoint()
    dying = _DiesAfterTheFirstRequest(store, point)
    life = EngineLife(INDEX, dying, point, VirtualClock(), task_hub=TASK_HUB)
    try:
        await life.engine.start()
        await life.engine.start_new("parent_of_a_signaller", "k11", client_input("k11"))
        deadline = time.monotonic() + 30
        while not point.crashed:
            assert time.monotonic() < deadline, "the signal was never sent"
            await asyncio.sleep(0.01)
    finally:
        await life.abandon()
    assert "k11" in store.histories and "k11-child" not in store.histories

    assert await _counter(store, "k11") == 1
