"""The write window on its own: at most its size in flight, the rest in order, a client's write
before the background's, and a cancelled waiter neither loses nor leaks a slot."""

from __future__ import annotations

import asyncio

import pytest

from devhost.store.base import Checkpoint, InstanceRow
from devhost.store.memory import MemoryStore
from devhost.store.write_window import (
    CLIENTS_IN_A_ROW,
    WriteWindow,
    a_client_waits,
    for_a_client,
)
from devhost.testing import DurableTestHost
from tests.devhost.apps import mixed_work
from tests.devhost.test_store_faults_azure import WAITING
from tests.waiting import eventually


class Writes:
    """Writes that hold their slot until released, recording the order they got one."""

    def __init__(self, window: WriteWindow) -> None:
        self.window = window
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.tasks: list[asyncio.Task[None]] = []

    def write(self, name: str, *, client: bool = False) -> asyncio.Task[None]:
        self.release[name] = asyncio.Event()

        async def run() -> None:
            async with self.window.slot():
                self.started.append(name)
                await self.release[name].wait()

        async def start() -> None:
            if client:
                with for_a_client():
                    await run()
            else:
                await run()

        task = asyncio.ensure_future(start())
        self.tasks.append(task)
        return task

    async def settle(self) -> None:
        """Let every task run until it holds a slot or waits for one."""
        await eventually(
            lambda: (
                len(self.started) + self.window.waiting == sum(not t.done() for t in self.tasks)
            ),
            "every write to hold a slot or wait for one",
        )

    async def finish(self) -> None:
        for event in self.release.values():
            event.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 10)


async def test_a_client_write_goes_before_the_background_writes_waiting() -> None:
    writes = Writes(WriteWindow(2))
    for n in range(5):
        writes.write(f"background-{n}")
    await writes.settle()
    assert writes.started == ["background-0", "background-1"]
    writes.write("client", client=True)
    await writes.settle()
    assert writes.window.waiting == 4

    writes.release["background-0"].set()
    await eventually(lambda: len(writes.started) == 3, "the freed slot to be taken")
    assert writes.started[2] == "client", "the client's write waited behind the background"
    writes.release["background-1"].set()
    await eventually(lambda: len(writes.started) == 4, "the next slot to be taken")
    assert writes.started[3] == "background-2", "the background writes lost their order"
    await writes.finish()
    assert writes.started[4:] == ["background-3", "background-4"]


async def test_a_stream_of_client_writes_does_not_hold_the_background_back() -> None:
    """A load of starts or a listing's writes keep the clients' queue full: the group commit
    still gets a slot after at most CLIENTS_IN_A_ROW of them."""
    writes = Writes(WriteWindow(1))
    writes.write("holder")
    writes.write("group commit")
    for n in range(3 * CLIENTS_IN_A_ROW):
        writes.write(f"client-{n}", client=True)
    await writes.settle()
    for n in range(CLIENTS_IN_A_ROW + 1):
        writes.release[writes.started[-1]].set()
        await eventually(lambda n=n: len(writes.started) == n + 2, "the slot to be handed on")
    assert writes.started[1:] == [
        *(f"client-{n}" for n in range(CLIENTS_IN_A_ROW)),
        "group commit",
    ]
    await writes.finish()
    assert writes.started[CLIENTS_IN_A_ROW + 2 :] == [
        f"client-{n}" for n in range(CLIENTS_IN_A_ROW, 3 * CLIENTS_IN_A_ROW)
    ]


async def test_a_write_that_fails_or_is_cancelled_in_its_slot_gives_the_slot_back() -> None:
    window = WriteWindow(2)

    async def failing() -> None:
        async with window.slot():
            raise ConnectionResetError("storage went away")

    async def holding(held: asyncio.Event) -> None:
        async with window.slot():
            held.set()
            await asyncio.Event().wait()

    with pytest.raises(ConnectionResetError):
        await failing()
    held = asyncio.Event()
    holder = asyncio.ensure_future(holding(held))
    await held.wait()
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    async with asyncio.timeout(5):  # both slots are free again
        async with window.slot(), window.slot():
            assert window.waiting == 0


async def test_a_cancelled_waiter_leaves_its_place_and_leaks_nothing() -> None:
    window = WriteWindow(1)
    writes = Writes(window)
    writes.write("first")
    doomed = writes.write("doomed")
    writes.write("last")
    await writes.settle()
    doomed.cancel()
    writes.release["first"].set()
    await eventually(lambda: "last" in writes.started, "the next waiter to get the slot")
    assert writes.started == ["first", "last"]
    await writes.finish()
    # The one slot is free again: a write gets it at once.
    async with asyncio.timeout(5):
        async with window.slot():
            pass


async def test_a_waiter_cancelled_after_it_was_handed_the_slot_passes_it_on() -> None:
    window = WriteWindow(1)
    holder = window.slot()
    await holder.__aenter__()
    handed = asyncio.ensure_future(window.slot().__aenter__())
    await eventually(lambda: window.waiting == 1, "the second write to wait")
    nxt = asyncio.ensure_future(window.slot().__aenter__())
    await eventually(lambda: window.waiting == 2, "the third write to wait")
    await holder.__aexit__(None, None, None)  # hands the slot to ``handed``...
    handed.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await handed
    async with asyncio.timeout(5):
        await nxt  # the slot went on to the next waiter


async def test_without_a_window_nothing_waits_and_a_window_below_one_is_refused() -> None:
    writes = Writes(WriteWindow(None))
    for n in range(50):
        writes.write(f"w{n}")
    await eventually(lambda: len(writes.started) == 50, "all fifty writes to start")
    await writes.finish()
    with pytest.raises(ValueError, match="write_window"):
        WriteWindow(0)


async def test_a_start_writes_as_a_client_the_group_commit_does_not() -> None:
    """The engine says which writes a client waits for, so a windowed store sends those first:
    a start's row (its 202 waits for it); the group commit's checkpoints wait their turn."""

    class Recording(MemoryStore):
        def __init__(self, task_hub: str) -> None:
            super().__init__(task_hub)
            self.rows: list[bool] = []
            self.checkpoints: list[tuple[str, bool]] = []

        async def write_row(self, row: InstanceRow) -> None:
            self.rows.append(a_client_waits())
            await super().write_row(row)

        async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
            self.checkpoints.append((checkpoint.row.runtime_status, a_client_waits()))
            await super().write_checkpoint(checkpoint)

    store = Recording("WindowHub")
    async with DurableTestHost(index=mixed_work.INDEX, store=store, task_hub="WindowHub") as host:
        instance_id = await host.start("mixed", 1)
        assert store.rows == [True], "the start's row was written as background work"
        await host.wait_for_custom_status(instance_id, WAITING, timeout=60)
        assert store.checkpoints and not any(client for _, client in store.checkpoints)
