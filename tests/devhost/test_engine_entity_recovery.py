"""Entities after a crash: an acknowledged signal is applied to the stored state exactly once.

Each test stops a first host at a chosen point (store calls replaced, as if the process died
there) and starts a second host on the same store.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost
from tests.devhost.apps.counters import INDEX

TASK_HUB = "entityrecovery"


async def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


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
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as first:
        first.engine.entities._enqueue = lambda *args: None  # type: ignore[method-assign]
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
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as first:
        first.engine.entities._enqueue = lambda *args: None  # type: ignore[method-assign]
        status = await first.run("signal_and_finish", "k4")
        assert status["runtimeStatus"] == "Completed"

    # The orchestration is over (nothing to recover there); the signal it recorded is not lost.
    assert await _counter(store, "k4") == 10


async def test_calls_and_signals_from_one_orchestration_arrive_in_order(
    store: MemoryStore,
) -> None:
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as host:
        status = await host.run("signal_then_read", "k5")
    assert status["output"] == 10
