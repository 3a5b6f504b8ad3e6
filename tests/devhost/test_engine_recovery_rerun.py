"""Recovery re-runs an instance on its stored history (to find its work in flight and the
custom status its last episode set). Every stored event ran before the crash, so the re-run
sends them all as played, as the real host's next episode would: code the app runs only when
not replaying (``if not context.is_replaying``, the SDK docs' place for a side effect such as a
notification) is not run a second time, for a running instance or a completed one whose last
checkpoint a crash tore (history stored, row not)."""

from __future__ import annotations

import contextlib
from typing import Any

import azure.durable_functions as df

from devhost.app.loader import index_app
from devhost.store.base import Checkpoint
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost
from tests.devhost.test_engine_crashes import until
from tests.durability.crash import life_that_crashes

TASK_HUB = "recoveryrerun"
app = df.DFApp()
notified: list[Any] = []


@app.activity_trigger(input_name="value")
def echo(value: str) -> str:
    return value


@app.orchestration_trigger(context_name="context")
def notifies_once(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("echo", "done")
    if not context.is_replaying:
        notified.append(context.instance_id)  # a side effect the app means to make once
    context.set_custom_status("finished")
    return result


@app.orchestration_trigger(context_name="context")
def notifies_then_waits(context: df.DurableOrchestrationContext):
    yield context.call_activity("echo", "first")
    if not context.is_replaying:
        notified.append(context.instance_id)
    context.set_custom_status("waiting")
    answer = yield context.wait_for_external_event("Go")
    return answer


INDEX = index_app(app)


async def test_a_completed_orchestration_s_side_effect_is_not_made_again_at_recovery() -> None:
    notified.clear()
    store = MemoryStore(TASK_HUB)

    def completed(checkpoint: Checkpoint) -> bool:
        return checkpoint.row.runtime_status == "Completed"

    async with life_that_crashes(INDEX, store, crash_after=completed, torn=True) as first:
        instance_id = await first.engine.start_new("notifies_once", None, None)
        await until(lambda: first.point.crashed, "the completing checkpoint was torn")
    assert store.instances[instance_id].runtime_status != "Completed"
    assert notified == [instance_id]

    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as second:
        await second.idle()
        status = await second.wait(instance_id)
        await second.engine.checkpoint()

    assert status["runtimeStatus"] == "Completed"
    assert status["customStatus"] == "finished"
    assert notified == [instance_id]


async def test_a_waiting_orchestration_s_side_effect_is_not_made_again_at_recovery() -> None:
    notified.clear()
    store = MemoryStore(TASK_HUB)

    stored: list[Checkpoint] = []

    def waiting(checkpoint: Checkpoint) -> bool:
        if checkpoint.row.custom_status == '"waiting"':
            stored.append(checkpoint)  # the store dies at its next write
        return bool(stored)

    async with life_that_crashes(INDEX, store, crash_after=waiting) as first:
        instance_id = await first.engine.start_new("notifies_then_waits", None, None)
        await until(lambda: bool(notified), "the first episode after the activity ran")
        with contextlib.suppress(Exception):  # the store dies right after this write
            await first.engine.checkpoint()
        await until(lambda: bool(stored), "the waiting state was stored")
    assert notified == [instance_id]

    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as second:
        await second.idle()
        await second.engine.raise_event(instance_id, "Go", '"go"')
        status = await second.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "go"
    assert notified == [instance_id]
