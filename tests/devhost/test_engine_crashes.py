"""Crashes at the instants that used to lose or strand work, one test each.

Each test kills a first host at a chosen point (its store accepts no write after it, and its
memory is lost, ``tests.durability.crash``) and starts a second host on what was stored. The
crash-point enumeration (``tests/durability``) tries every point; these pin the ones that
once went wrong.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from devhost.engine import replay
from devhost.engine.api import StatusOptions
from devhost.engine.clock import VirtualClock
from devhost.engine.history import EventType
from devhost.engine.messages import MessageIds
from devhost.engine.runtime import Engine, EngineSettings
from devhost.store.base import Checkpoint, StoredMessage
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost, client_input
from tests.devhost.apps import counters, sequences, waiting
from tests.durability.crash import CrashingMemoryStore, CrashPoint, EngineLife, life_that_crashes

TASK_HUB = "crashes"


async def until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.001)


def _started(history: list[dict[str, Any]]) -> int:
    return sum(e["EventType"] == EventType.ExecutionStarted for e in history)


async def test_a_checkpoint_torn_between_history_and_row_strands_nothing() -> None:
    # The last checkpoint's history (ending in ExecutionCompleted) is stored, its row is not.
    store = MemoryStore(TASK_HUB)

    def ended(checkpoint: Checkpoint) -> bool:
        return checkpoint.row.runtime_status == "Completed"

    async with life_that_crashes(sequences.INDEX, store, crash_after=ended, torn=True) as first:
        instance_id = await first.engine.start_new("hello_sequence", None, None)
        await until(lambda: first.point.crashed, "the last checkpoint was torn")
    assert store.instances[instance_id].runtime_status != "Completed"

    async with DurableTestHost(index=sequences.INDEX, store=store, task_hub=TASK_HUB) as second:
        status = await second.wait(instance_id)
        await second.engine.checkpoint()

    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    row = store.instances[instance_id]
    assert row.runtime_status == "Completed" and row.output is not None


async def test_an_event_held_while_suspended_survives_a_crash() -> None:
    store = MemoryStore(TASK_HUB)
    async with life_that_crashes(waiting.INDEX, store) as first:
        engine = first.engine
        await engine.start_new("wait_for_approve", "paused", None)
        await until(lambda: engine.instances["paused"].status == "Running", "running")
        # One episode takes both: the suspend is recorded, the event is held.
        await engine.suspend("paused", "hold on")
        await engine.raise_event("paused", "Approve", json.dumps("later"))
        await until(lambda: engine.instances["paused"].status == "Suspended", "suspended")
        await engine.checkpoint()  # the suspended instance, its held event not in it

    async with DurableTestHost(index=waiting.INDEX, store=store, task_hub=TASK_HUB) as second:
        await second.engine.resume("paused", "go on")
        status = await second.wait("paused")

    assert status["runtimeStatus"] == "Completed" and status["output"] == "later"


async def test_a_start_and_an_event_queued_at_a_crash_start_one_execution() -> None:
    store = MemoryStore(TASK_HUB)
    async with life_that_crashes(waiting.INDEX, store) as first:
        first.point.stop_after(2)  # the start's message and the event's, nothing after
        await first.engine.start_new("wait_for_approve", "queued", None)
        await first.engine.raise_event("queued", "Approve", json.dumps("yes"))
    assert [m.body["kind"] for m in await store.read_messages()] == ["start", "event"]

    async with DurableTestHost(index=waiting.INDEX, store=store, task_hub=TASK_HUB) as second:
        status = await second.wait("queued")
        await second.engine.checkpoint()

    assert status["runtimeStatus"] == "Completed" and status["output"] == "yes"
    stored = await store.read_history("queued")
    assert stored is not None and _started(stored.events) == 1


async def test_an_episode_failing_inside_the_host_fails_the_instance_and_keeps_its_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore(TASK_HUB)
    run = replay.HostReplay.run
    calls = {"left": 0}

    def fails_once(self: replay.HostReplay, new_events_from: int) -> replay.ReplayResult:
        if calls["left"]:
            calls["left"] -= 1
            raise RuntimeError("a fault inside the host")
        return run(self, new_events_from)

    monkeypatch.setattr(replay.HostReplay, "run", fails_once)
    async with DurableTestHost(index=waiting.INDEX, store=store, task_hub=TASK_HUB) as host:
        await host.start("wait_for_approve", instance_id="faulty")
        await host.idle()
        calls["left"] = 1
        await host.raise_event("faulty", "Approve", "yes", as_client=False)
        status = await host.wait("faulty")
        history = await host.status("faulty", history=True)

    assert status["runtimeStatus"] == "Failed"
    assert "host error: RuntimeError" in status["output"]
    assert history is not None
    raised = [e for e in history["historyEvents"] if e["EventType"] == "EventRaised"]
    assert [e["Input"] for e in raised] == ["yes"]  # the event is kept, for a rewind


class _SlowChildStore(CrashingMemoryStore):
    """Takes a while to store a sub-orchestration's end."""

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        if checkpoint.row.name == "child" and checkpoint.row.runtime_status == "Completed":
            await asyncio.sleep(0.2)
        await super().write_checkpoint(checkpoint)


async def test_a_parent_records_a_child_s_end_only_once_that_end_is_stored() -> None:
    store = MemoryStore(TASK_HUB)
    point = CrashPoint()

    def parent_saw_its_child(checkpoint: Checkpoint) -> bool:
        return checkpoint.row.name == "parent_default_id" and any(
            e["EventType"] == EventType.SubOrchestrationInstanceCompleted
            for e in checkpoint.history
        )

    slow = _SlowChildStore(store, point, crash_after=parent_saw_its_child)
    life = EngineLife(sequences.INDEX, slow, point, VirtualClock(), task_hub=TASK_HUB)
    try:
        await life.engine.start()
        parent_id = await life.engine.start_new("parent_default_id", None, None)
        await until(lambda: point.reached, "the parent recorded its child's end")
    finally:
        await life.abandon()

    children = [row for row in store.instances.values() if row.parent_instance_id == parent_id]
    assert [child.runtime_status for child in children] == ["Completed"]


class _HoldingStore(CrashingMemoryStore):
    """Holds the first entity request's put until ``release`` is set."""

    def __init__(self, inner: MemoryStore, point: CrashPoint, **options: Any) -> None:
        super().__init__(inner, point, **options)
        self.release = asyncio.Event()
        self.holding = asyncio.Event()

    async def put_message(self, message: StoredMessage) -> None:
        if message.body["kind"] == "request" and not self.release.is_set():
            self.holding.set()
            await self.release.wait()
        await super().put_message(message)


async def test_a_signal_sent_while_a_checkpoint_is_under_way_is_not_lost() -> None:
    # Two signals: the first one's put is slow; meanwhile a second episode sends another. The
    # checkpoint under way must not store the second EventSent without its message.
    store = MemoryStore(TASK_HUB)
    point = CrashPoint()
    holding = _HoldingStore(store, point, crash_after=lambda cp: cp.row.name == "signal_on_go")
    life = EngineLife(counters.INDEX, holding, point, VirtualClock(), task_hub=TASK_HUB)
    try:
        engine = life.engine
        await engine.start()
        await engine.start_new("signal_on_go", "sender", client_input("k6"))
        await until(holding.holding.is_set, "the first signal's put is held")
        await engine.raise_event("sender", "Go", None)
        await until(
            lambda: (
                sum(
                    e["EventType"] == EventType.EventSent
                    for e in engine.instances["sender"].history
                )
                == 2
            ),
            "the second signal was sent in memory",
        )
        holding.release.set()
        await until(lambda: point.crashed, "the checkpoint was written")
    finally:
        await life.abandon()

    async with DurableTestHost(index=counters.INDEX, store=store, task_hub=TASK_HUB) as second:
        await second.idle()
        await second.raise_event("sender", "Done")
        await second.wait("sender")
        await second.idle()
        exists, state = await second.engine.read_entity("Counter", "k6")

    assert exists and state is not None and json.loads(state) == 11


async def test_events_after_a_restart_on_a_clock_set_back_are_not_taken_for_old_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore(TASK_HUB)
    # The first host's clock ran an hour ahead: its messages' IDs (and so the stored
    # watermark) are in the future of the next host's clock.
    ahead = time.time_ns() + 3_600 * 10**9
    monkeypatch.setattr(time, "time_ns", lambda: ahead)
    async with DurableTestHost(index=waiting.INDEX, store=store, task_hub=TASK_HUB) as first:
        await first.start("collect", instance_id="skewed")
        await first.raise_event("skewed", "Add", 1, as_client=False)
        await first.idle()
    monkeypatch.undo()

    async with life_that_crashes(waiting.INDEX, store) as second:
        await second.engine.get_status("skewed", StatusOptions())
        second.point.stop_after(1)  # the event's message, then the host dies
        await second.engine.raise_event("skewed", "Add", json.dumps(2))

    async with DurableTestHost(index=waiting.INDEX, store=store, task_hub=TASK_HUB) as third:
        await third.idle()
        await third.raise_event("skewed", "Add", 3, as_client=False)
        status = await third.wait("skewed")

    assert status["output"] == [1, 2, 3]


def test_message_ids_grow_past_an_observed_watermark() -> None:
    ids = MessageIds()
    future = f"{time.time_ns() + 10**12:020d}00000007"
    ids.observe(future)
    first, second = ids.new(), ids.new()
    assert future < first < second


class _SlowStartStore(MemoryStore):
    """Holds the start message of one instance back until ``release`` is set."""

    def __init__(self, slow_instance: str) -> None:
        super().__init__(TASK_HUB)
        self.slow_instance = slow_instance
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def put_message(self, message: StoredMessage) -> None:
        if message.instance_id == self.slow_instance and message.body["kind"] == "start":
            self.holding.set()
            await self.release.wait()
        await super().put_message(message)


async def test_an_instance_evicted_while_it_is_started_again_runs_once() -> None:
    # The cache holds two instances; while the restart of a finished one is being stored,
    # two other starts push it out of memory. The restart must go on in the cache, not in
    # a stray copy whose results nobody receives (its work would run twice).
    store = _SlowStartStore("again")
    greeted: list[str] = []
    engine = Engine(
        sequences.INDEX,
        store,
        task_hub=TASK_HUB,
        clock=VirtualClock(),
        settings=EngineSettings(max_cached_instances=2, checkpoint_interval=0.01),
        activity_overrides={"say_hello": lambda city: greeted.append(city) or f"Hi {city}"},
    )
    await engine.start()
    try:
        store.slow_instance = ""
        await engine.start_new("hello_sequence", "again", None)
        await engine.wait_for_completion("again", 60)
        store.slow_instance = "again"
        restart = asyncio.ensure_future(engine.start_new("hello_sequence", "again", None))
        await until(store.holding.is_set, "the restart's start message is being stored")
        for _ in range(2):
            other = await engine.start_new("hello_sequence", None, None)
            await engine.wait_for_completion(other, 60)
        store.release.set()
        await restart
        status = await engine.wait_for_completion("again", 60)
    finally:
        await engine.stop()

    assert status is not None and status["runtimeStatus"] == "Completed"
    assert len(greeted) == 4 * 3  # four runs of three greetings, none twice


async def test_an_entity_state_is_read_once_it_is_stored() -> None:
    store = _HeldEntityStore()
    async with DurableTestHost(index=counters.INDEX, store=store, task_hub=TASK_HUB) as host:
        try:
            await host.engine.signal_entity("Counter", "held", "add", client_input(3))
            await host.idle()  # applied in memory, its row held back
            read = asyncio.ensure_future(host.engine.read_entity("Counter", "held"))
            await asyncio.sleep(0.05)
            assert not read.done(), "a state a crash could take back was shown"
        finally:
            store.release.set()  # the host's stop writes it
        exists, state = await read

    assert exists and state == "3"
    saved = json.loads(store.instances["@counter@held"].input or "{}")
    assert saved["state"] == "3"


class _HeldEntityStore(MemoryStore):
    """Holds entity rows back until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__(TASK_HUB)
        self.release = asyncio.Event()

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        if checkpoint.row.instance_id.startswith("@"):
            await self.release.wait()
        await super().write_checkpoint(checkpoint)


class _ParentBehindItsChild(CrashingMemoryStore):
    """Lets the parent's first checkpoint land (the episode that starts its child: the child
    starts only once it is stored), fails the parent's later writes until its child's end is
    stored, then dies at the next one: the child finished in the store, the parent's record
    of that end is lost."""

    def __init__(self, inner: MemoryStore, point: CrashPoint) -> None:
        super().__init__(inner, point)
        self.parent_writes = 0
        self.child_stored = False

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        row = checkpoint.row
        if row.name == "parent_explicit_id":
            self.parent_writes += 1
            if self.parent_writes > 1:
                if not self.child_stored:
                    raise ConnectionError("the parent's write is slow to land")
                self.point.stop_after(0)
        await super().write_checkpoint(checkpoint)
        if row.name == "child" and row.runtime_status == "Completed":
            self.child_stored = True


async def test_a_child_that_ended_before_its_parent_recorded_its_end_is_not_run_again() -> None:
    store = MemoryStore(TASK_HUB)
    point = CrashPoint()
    slow = _ParentBehindItsChild(store, point)
    life = EngineLife(sequences.INDEX, slow, point, VirtualClock(), task_hub=TASK_HUB)
    try:
        await life.engine.start()
        await life.engine.start_new("parent_explicit_id", "p", None)
        await until(lambda: point.crashed, "the parent's write after its child's end")
    finally:
        await life.abandon()
    first = store.instances["p-child"]
    assert first.runtime_status == "Completed"
    assert store.instances["p"].runtime_status != "Completed"

    async with DurableTestHost(index=sequences.INDEX, store=store, task_hub=TASK_HUB) as second:
        status = await second.wait("p")
        await second.engine.checkpoint()

    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["greeting"] == "Hello Lima!"
    # The parent got the child's stored end; the child did not run a second execution.
    assert store.instances["p-child"].execution_id == first.execution_id


class _FirstDeleteFails(CrashingMemoryStore):
    """The first delete of consumed messages fails (storage away for a moment, or a kill
    before the background delete lands); the ones after it go through."""

    def __init__(self, inner: MemoryStore, point: CrashPoint) -> None:
        super().__init__(inner, point)
        self.failed = False

    async def delete_messages(self, messages: list[StoredMessage]) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("the delete did not land")
        await super().delete_messages(messages)


async def test_a_purged_instance_is_not_started_again_by_its_start_message() -> None:
    # Started under the caller's ID (a queued start), finished and purged at once; the start
    # message's delete had not landed. After a crash nothing says it ran: no row, no history,
    # no watermark. Its queued start must not start it again (its activities would run twice).
    store = MemoryStore(TASK_HUB)
    point = CrashPoint()
    failing = _FirstDeleteFails(store, point)
    life = EngineLife(sequences.INDEX, failing, point, VirtualClock(), task_hub=TASK_HUB)
    try:
        engine = life.engine
        await engine.start()
        await engine.start_new("hello_sequence", "purged", None)
        status = await engine.wait_for_completion("purged", 60)
        assert status is not None and status["runtimeStatus"] == "Completed"
        await until(lambda: failing.failed, "the start message's delete was tried")
        assert await engine.purge("purged") == 1
    finally:
        await life.abandon()
    assert "purged" not in store.instances

    async with DurableTestHost(index=sequences.INDEX, store=store, task_hub=TASK_HUB) as second:
        await second.idle()
        await second.engine.checkpoint()
        assert await second.status("purged") is None

    assert "purged" not in store.instances and "purged" not in store.histories
    assert not await store.read_messages()


async def test_a_custom_status_whose_row_a_crash_took_is_shown_again_after_recovery() -> None:
    # The last checkpoint before the orchestration waits for an event is torn: its history is
    # stored, its row (the only place the custom status is kept) is not. Nothing else happens
    # until a client sends the event, and a client may decide to by the custom status.
    store = MemoryStore(TASK_HUB)

    def waits_for_go(checkpoint: Checkpoint) -> bool:
        return checkpoint.row.custom_status == json.dumps("waiting for Go")

    async with life_that_crashes(
        waiting.INDEX, store, crash_after=waits_for_go, torn=True
    ) as first:
        await first.engine.start_new("shown_then_waiting", "shown", None)
        await until(lambda: "shown" in store.instances, "the first checkpoint")
        await first.engine.raise_event("shown", "Start", None)
        await until(lambda: first.point.crashed, "the checkpoint of the wait was torn")
    assert store.instances["shown"].custom_status == json.dumps("working")

    async with DurableTestHost(index=waiting.INDEX, store=store, task_hub=TASK_HUB) as second:
        await second.idle()
        status = await second.status("shown")
        assert status is not None and status["customStatus"] == "waiting for Go"
        await second.engine.checkpoint()
        assert store.instances["shown"].custom_status == json.dumps("waiting for Go")
        await second.raise_event("shown", "Go", "went")
        assert (await second.wait("shown"))["runtimeStatus"] == "Completed"


@pytest.mark.parametrize("at_once", [False, True], ids=["stale", "missing"])
async def test_the_custom_status_of_an_instance_completed_by_a_torn_checkpoint_is_shown(
    at_once: bool,
) -> None:
    # The checkpoint that completes the instance is torn: its history (ending in
    # ExecutionCompleted) is stored, its row is not. The row left behind holds the custom status
    # of the episode before ("working"), or none (the Pending row of a start, when the first
    # episode completes). Recovery rebuilds the row from the history as completed; the custom
    # status, kept only in the row, must be the one the last episode set.
    store = MemoryStore(TASK_HUB)

    def completed(checkpoint: Checkpoint) -> bool:
        return checkpoint.row.runtime_status == "Completed"

    async with life_that_crashes(waiting.INDEX, store, crash_after=completed, torn=True) as first:
        instance_id = await first.engine.start_new("shown_when_done", None, client_input(at_once))
        if not at_once:
            await until(lambda: instance_id in store.histories, "the first checkpoint")
            await first.engine.checkpoint()
            await first.engine.raise_event(instance_id, "Go", None)
        await until(lambda: first.point.crashed, "the last checkpoint was torn")
    left = store.instances[instance_id]
    assert left.runtime_status != "Completed"
    assert left.custom_status == (None if at_once else json.dumps("working"))

    async with DurableTestHost(index=waiting.INDEX, store=store, task_hub=TASK_HUB) as second:
        await second.idle()
        status = await second.wait(instance_id)
        await second.engine.checkpoint()

    assert status["runtimeStatus"] == "Completed" and status["output"] == "finished"
    assert status["customStatus"] == "done"
    assert store.instances[instance_id].custom_status == json.dumps("done")


class _DiesAtTheRowOf(CrashingMemoryStore):
    """Dies as it is about to write a checkpoint of one instance."""

    def __init__(self, inner: MemoryStore, point: CrashPoint, instance_id: str) -> None:
        super().__init__(inner, point)
        self.instance_id = instance_id

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        if checkpoint.row.instance_id == self.instance_id:
            self.point.stop_after(0)
        await super().write_checkpoint(checkpoint)


async def test_a_restarted_instance_whose_row_recovery_repaired_is_not_lost_by_a_second_crash() -> (
    None
):
    # An instance started again under its ID once it finished: the new execution's first
    # checkpoint is torn, so its history is stored and its row still shows the first
    # execution's end. Only the queued start leads the next host to it (a listing of what runs
    # does not find a finished row). That host repairs the row in memory; a kill before it
    # stores it must leave the start message in place, or nothing finds the instance again:
    # its second run never ends and its row shows the first run's result.
    store = MemoryStore(TASK_HUB)
    first_execution = ""

    def second_run_begins(checkpoint: Checkpoint) -> bool:
        row = checkpoint.row
        return bool(first_execution) and row.execution_id != first_execution

    async with life_that_crashes(
        sequences.INDEX, store, crash_after=second_run_begins, torn=True
    ) as first:
        engine = first.engine
        await engine.start_new("child", "again", client_input("Tokyo"))
        await until(lambda: "again" in store.instances, "the first run's first checkpoint")
        first_execution = store.instances["again"].execution_id
        status = await engine.wait_for_completion("again", 60)
        assert status is not None and status["output"]["greeting"] == "Hello Tokyo!"
        await engine.start_new("child", "again", client_input("Lima"))
        await until(lambda: first.point.crashed, "the second run's first checkpoint was torn")
    assert store.histories["again"].execution_id != first_execution
    assert store.instances["again"].execution_id == first_execution

    point = CrashPoint()
    dying = _DiesAtTheRowOf(store, point, "again")
    life = EngineLife(sequences.INDEX, dying, point, VirtualClock(), task_hub=TASK_HUB)
    try:
        await life.engine.start()
        await until(lambda: point.crashed, "the repaired row's write")
    finally:
        await life.abandon()

    async with DurableTestHost(index=sequences.INDEX, store=store, task_hub=TASK_HUB) as third:
        await third.idle()
        await third.engine.checkpoint()
        # Read from the store, not through the host, which would load (and so resume) it.
        row = store.instances["again"]
        assert row.runtime_status == "Completed" and row.output is not None
        assert json.loads(row.output)["greeting"] == "Hello Lima!"
        assert row.execution_id == store.histories["again"].execution_id != first_execution
    assert not await store.read_messages()
