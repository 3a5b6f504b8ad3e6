"""One orchestration doing a bit of everything (chain, fan-out, sub-orchestration, timer,
external event), for the storage-fault tests."""

from __future__ import annotations

from datetime import timedelta

import azure.durable_functions as df

from devhost.app.loader import index_app

app = df.DFApp()


@app.activity_trigger(input_name="value")
def add_one(value: int) -> int:
    return value + 1


@app.orchestration_trigger(context_name="context")
def child_chain(context: df.DurableOrchestrationContext):
    value = context.get_input()
    for _ in range(3):
        value = yield context.call_activity("add_one", value)
    return value


@app.orchestration_trigger(context_name="context")
def mixed(context: df.DurableOrchestrationContext):
    start = context.get_input()
    first = yield context.call_activity("add_one", start)
    fanned = yield context.task_all([context.call_activity("add_one", first + i) for i in range(3)])
    child = yield context.call_sub_orchestrator(
        "child_chain", sum(fanned), f"{context.instance_id}-child"
    )
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
    context.set_custom_status("waiting")
    approval = yield context.wait_for_external_event("Approve")
    return {"child": child, "approval": approval}


def expected_output(start: int, approval: object) -> dict[str, object]:
    """What ``mixed`` returns for ``start`` once ``approval`` arrived."""
    first = start + 1
    return {"child": sum(first + i + 1 for i in range(3)) + 3, "approval": approval}


INDEX = index_app(app)
