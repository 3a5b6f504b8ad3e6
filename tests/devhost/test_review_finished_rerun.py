"""Review: recovery re-runs a finished instance whose row a torn checkpoint left older than its
history (to take its custom status, crash2: recovery.redispatch). The SDK runs the user's code
again, and the part after the last episode's start is sent as new events, so
``context.is_replaying`` is False there: code the app guards with ``if not
context.is_replaying`` (a notification, the SDK docs' pattern for side effects) runs again for
an orchestration that had completed. The real host never replays a completed orchestration,
and before crash2 devhost did not either."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from devhost.app.loader import index_app
from devhost.store.base import Checkpoint
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost
from tests.devhost.test_engine_crashes import until
from tests.durability.crash import life_that_crashes

TASK_HUB = "reviewrerun"
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
    assert notified == [instance_id]  # fails: [id, id], the re-run made it again
