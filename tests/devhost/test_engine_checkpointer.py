"""The checkpointer alone: the order of durable writes, and who waits for what.

These are the rules crash safety rests on (``devhost/engine/checkpointer.py``), tested without
an engine: a target is anything with a history, a row and a ``DurableState``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from devhost.engine.checkpointer import Checkpointer
from devhost.engine.instance import DurableState
from devhost.store.base import Checkpoint, InstanceRow, StoredMessage
from devhost.store.memory import MemoryStore
from devhost.store.write_window import a_client_waits
from tests.waiting import eventually

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Target:
    instance_id: str
    execution_id: str = "e1"
    history: list[dict[str, Any]] = field(default_factory=list)
    durable: DurableState = field(default_factory=DurableState)

    def row(self) -> InstanceRow:
        return InstanceRow(self.instance_id, "orch", self.execution_id, "Running", NOW, NOW)


class RecordingStore(MemoryStore):
    """A memory store that logs each write and can hold checkpoints until released."""

    def __init__(self) -> None:
        super().__init__("checkpointer")
        self.log: list[str] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.checkpoints_begun = 0
        self.fail_next = False

    async def put_message(self, message: StoredMessage) -> None:
        self.log.append(f"put {message.msg_id}")
        await super().put_message(message)

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.checkpoints_begun += 1
        await self.hold.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionResetError("the store is unreachable")
        self.log.append(f"checkpoint {len(checkpoint.history)} from {checkpoint.persisted_count}")
        await super().write_checkpoint(checkpoint)

    async def delete_messages(self, messages: list[StoredMessage]) -> None:
        self.log.append("delete " + ",".join(m.msg_id for m in messages))
        await super().delete_messages(messages)


def event(n: int) -> dict[str, Any]:
    return {"EventType": 15, "EventId": -1, "Timestamp": "2026-01-01T00:00:00Z", "Name": str(n)}


def checkpointer_for(store: RecordingStore, log: list[str], **options: Any) -> Checkpointer:
    background: list[asyncio.Task[None]] = []
    return Checkpointer(
        store,
        interval=options.get("interval", 60),
        max_delay=1.0,
        hand_off=options.get("hand_off", lambda message: log.append(f"hand off {message.msg_id}")),
        spawn=lambda coro: background.append(asyncio.ensure_future(coro)),
        after_flush=lambda: None,
        settled=lambda: None,
    )


async def test_one_checkpoint_writes_in_the_documented_order() -> None:
    store = RecordingStore()
    checkpointer = checkpointer_for(store, store.log)
    target = Target("a", history=[event(1)])
    inbox = StoredMessage("m1", "a", {"kind": "event"})
    await store.put_message(inbox)
    store.log.clear()

    checkpointer.send(target, _request("out1", signal=True))
    checkpointer.send(target, _request("out2", signal=False))
    checkpointer.record(target, consumed=[inbox], then=lambda: store.log.append("told"))
    await checkpointer.write(target)
    await asyncio.sleep(0)  # the background delete

    assert store.log == [
        "put out1",  # a signal before the history that records it
        "checkpoint 1 from 0",
        "put out2",  # a call after it
        "hand off out1",
        "hand off out2",
        "told",
        "delete m1",
    ]
    stored = await store.read_history("a")
    assert stored is not None and stored.inbox_watermark == "m1"


async def test_a_clients_write_is_the_clients_the_work_it_starts_after_is_not() -> None:
    """A status read's write goes before the group commit's (and tries once while storage is
    down), but the delete of the messages it consumed, and the deliveries it hands off, are
    background work: with a client's patience, a delete made during an outage would give up at
    once and leave the messages for the next start."""

    class Flagged(RecordingStore):
        async def put_message(self, message: StoredMessage) -> None:
            self.log.append(f"put for a client: {a_client_waits()}")
            await super().put_message(message)

        async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
            self.log.append(f"checkpoint for a client: {a_client_waits()}")
            await super().write_checkpoint(checkpoint)

        async def delete_messages(self, messages: list[StoredMessage]) -> None:
            self.log.append(f"delete for a client: {a_client_waits()}")
            await super().delete_messages(messages)

    store = Flagged()
    log: list[str] = []
    checkpointer = checkpointer_for(
        store, log, hand_off=lambda m: log.append(f"hand off for a client: {a_client_waits()}")
    )
    target = Target("a", history=[event(1)])
    inbox = StoredMessage("m1", "a", {"kind": "event"})
    await RecordingStore.put_message(store, inbox)
    checkpointer.send(target, _request("out1", signal=True))
    checkpointer.record(target, consumed=[inbox])
    await checkpointer.write(target, for_client=True)
    await eventually(lambda: any(e.startswith("delete") for e in store.log), "the delete")

    flags = sorted(e for e in store.log + log if "for a client" in e)
    assert flags == [
        "checkpoint for a client: True",
        "delete for a client: False",
        "hand off for a client: False",
        "put for a client: True",
    ]


def _request(msg_id: str, *, signal: bool) -> StoredMessage:
    request = {"id": f"r-{msg_id}", "op": "add", "signal": signal}
    return StoredMessage(msg_id, "@e@k", {"kind": "request", "request": request})


async def test_a_call_is_sent_only_once_the_history_that_makes_it_is_stored() -> None:
    # A crash between the two would otherwise leave the call applied for an episode that runs
    # again and may not make it (the chaos run: a reservation of a cancelled order kept).
    store = RecordingStore()
    checkpointer = checkpointer_for(store, store.log)
    target = Target("a", history=[event(1)])
    checkpointer.send(target, _request("sig", signal=True))
    checkpointer.send(target, _request("call", signal=False))

    store.fail_next = True
    with pytest.raises(ConnectionResetError):
        await checkpointer.write(target)
    assert store.log == ["put sig", "hand off sig"]
    assert [m.msg_id for m in await store.read_messages()] == ["sig"]

    await checkpointer.write(target)
    assert store.log[2:] == ["checkpoint 1 from 0", "put call", "hand off call"]


async def test_a_failed_write_keeps_everything_for_the_next_one() -> None:
    store = RecordingStore()
    checkpointer = checkpointer_for(store, store.log)
    target = Target("a", history=[event(1)])
    told: list[str] = []
    inbox = StoredMessage("m1", "a", {"kind": "event"})
    checkpointer.record(target, consumed=[inbox], then=lambda: told.append("told"))

    store.fail_next = True
    with pytest.raises(ConnectionResetError):
        await checkpointer.write(target)
    assert told == [] and target.durable.dirty  # nobody was told what is not stored

    await checkpointer.write(target)
    assert told == ["told"]
    assert target.durable.persisted_count == 1 and not target.durable.consumed


async def test_changes_made_while_a_checkpoint_is_written_wait_for_the_next() -> None:
    store = RecordingStore()
    checkpointer = checkpointer_for(store, store.log)
    target = Target("a", history=[event(1)])
    checkpointer.record(target)
    store.hold.clear()
    writing = asyncio.ensure_future(checkpointer.write(target))
    await asyncio.sleep(0)

    # Meanwhile the history is rewritten from index 0 and grows.
    target.history = [event(9), event(2)]
    checkpointer.record(target, rewritten_from=0)
    store.hold.set()
    await writing  # ``write`` returns only once nothing of the target is unwritten

    assert store.log == ["checkpoint 1 from 0", "checkpoint 2 from 0"]
    stored = await store.read_history("a")
    assert stored is not None and [e["Name"] for e in stored.events] == ["9", "2"]


async def test_every_caller_of_checkpoint_returns_after_its_own_changes_are_stored() -> None:
    store = RecordingStore()
    checkpointer = checkpointer_for(store, store.log, interval=60)
    loop = asyncio.ensure_future(checkpointer.run())
    try:
        targets = [Target(f"t{n}", history=[event(n)]) for n in range(30)]
        store.hold.clear()  # the first flush is slow; callers keep arriving meanwhile

        async def change_then_checkpoint(target: Target) -> bool:
            checkpointer.record(target)
            await checkpointer.checkpoint()
            stored = await store.read_history(target.instance_id)
            return stored is not None and len(stored.events) == 1

        callers = [asyncio.ensure_future(change_then_checkpoint(t)) for t in targets[:10]]
        await eventually(lambda: store.checkpoints_begun, "the first flush to begin writing")
        callers += [asyncio.ensure_future(change_then_checkpoint(t)) for t in targets[10:]]
        store.hold.set()
        results = await asyncio.wait_for(asyncio.gather(*callers), 60)
    finally:
        loop.cancel()

    assert results == [True] * 30
