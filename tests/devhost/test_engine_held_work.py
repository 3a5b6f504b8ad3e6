"""Work an episode scheduled waits for that episode's write: what may happen meanwhile.

An activity (an HTTP call, a child) starts only once the episode that scheduled it is stored
(``tests/devhost/test_engine_dispatch_after_write.py`` shows why). While that write is under
way the instance may get a new execution, or the host may stop; and the write may have stored
the history alone, leaving the instance row for later.
"""

from __future__ import annotations

import asyncio
import threading

import azure.durable_functions as df

from devhost.app.loader import index_app
from devhost.engine.runtime import Engine, EngineSettings
from devhost.store.base import Checkpoint
from devhost.store.memory import MemoryStore
from devhost.testing import client_input
from tests.waiting import eventually

app = df.DFApp()
ran: list[str] = []
release = threading.Event()


@app.activity_trigger(input_name="value")
def record(value: str) -> str:
    ran.append(value)
    return value


@app.activity_trigger(input_name="value")
def slow(value: str) -> str:
    if not release.wait(60):
        raise TimeoutError("the test never released the slow activity")
    return value


@app.orchestration_trigger(context_name="context")
def echo(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("record", context.get_input()))


@app.orchestration_trigger(context_name="context")
def staged(context: df.DurableOrchestrationContext):
    context.set_custom_status("stage-1")
    return (yield context.call_activity("slow", "x"))


INDEX = index_app(app)


class _FirstWriteHeld(MemoryStore):
    """Holds the first checkpoint until ``gate`` is set (a slow write)."""

    def __init__(self, task_hub: str) -> None:
        super().__init__(task_hub)
        self.gate = asyncio.Event()
        self.held = asyncio.Event()
        self._first = True

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        if self._first:
            self._first = False
            self.held.set()
            await self.gate.wait()
        await super().write_checkpoint(checkpoint)


async def test_a_new_execution_does_not_take_the_result_of_work_the_old_one_scheduled() -> None:
    """With ``overridableExistingInstanceStates=AnyState`` a start may replace a running
    instance while the write its activity waits for is under way: the old execution's
    activity must not start and answer for the new one."""
    ran.clear()
    store = _FirstWriteHeld("anystate")
    engine = Engine(
        INDEX, store, task_hub="anystate", settings=EngineSettings(overridable_states="AnyState")
    )
    await engine.start()
    try:
        await engine.start_new("echo", "x", client_input("A"))
        await asyncio.wait_for(store.held.wait(), 60)
        asyncio.get_running_loop().call_later(0.2, store.gate.set)
        await engine.start_new("echo", "x", client_input("B"))
        status = await engine.wait_for_completion("x", 60)
    finally:
        store.gate.set()
        await engine.stop()
    assert status is not None and status["runtimeStatus"] == "Completed"
    assert status["output"] == "B"
    assert "B" in ran


async def test_work_whose_write_lands_while_the_host_stops_is_left_to_the_next_start() -> None:
    """Started during ``stop()``, an activity's result would never be recorded (it would run
    again after the restart); the stored ``TaskScheduled`` has the next start run it."""
    ran.clear()
    store = _FirstWriteHeld("stopping")
    engine = Engine(INDEX, store, task_hub="stopping", settings=EngineSettings(stop_grace=0.5))
    await engine.start()
    instance_id = await engine.start_new("echo", None, client_input("once"))
    await asyncio.wait_for(store.held.wait(), 60)
    asyncio.get_running_loop().call_later(0.1, store.gate.set)
    await engine.stop()
    assert ran == []

    again = Engine(INDEX, store, task_hub="stopping")
    await again.start()
    try:
        status = await again.wait_for_completion(instance_id, 60)
    finally:
        await again.stop()
    assert status is not None and status["output"] == "once"
    assert ran == ["once"]


async def test_a_row_left_for_later_is_written_with_no_group_commit_interval() -> None:
    """``checkpoint_interval=0`` writes every change at once; the row a write before an
    activity left behind (its custom status) is still stored while the activity runs."""
    release.clear()
    store = MemoryStore("nointerval")
    engine = Engine(
        INDEX,
        store,
        task_hub="nointerval",
        settings=EngineSettings(checkpoint_interval=0, checkpoint_max_delay=0.1),
    )
    await engine.start()
    try:
        instance_id = await engine.start_new("staged", None, None)
        await eventually(
            lambda: store.instances[instance_id].custom_status == '"stage-1"',
            "the row with the custom status stored while the activity runs",
        )
        assert store.instances[instance_id].runtime_status == "Running"
    finally:
        release.set()
        await engine.stop()
