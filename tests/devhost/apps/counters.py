"""A counter entity and orchestrators that use it, for the engine tests."""

from __future__ import annotations

from datetime import timedelta

import azure.durable_functions as df

from devhost.app.loader import index_app

app = df.DFApp()


@app.entity_trigger(context_name="context")
def Counter(context: df.DurableEntityContext) -> None:  # noqa: N802 - entity names are public
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
    elif operation == "reset":
        value = 0
    elif operation == "fail":
        raise ValueError("counters cannot fail on demand")
    elif operation != "get":
        raise ValueError(f"unknown operation {operation}")
    context.set_state(value)
    context.set_result(value)


@app.orchestration_trigger(context_name="context")
def add_and_read(context: df.DurableOrchestrationContext):
    counter = df.EntityId("Counter", context.get_input())
    after_add = yield context.call_entity(counter, "add", 5)
    after_second_add = yield context.call_entity(counter, "add", 2)
    return [after_add, after_second_add]


@app.orchestration_trigger(context_name="context")
def failing_operation(context: df.DurableOrchestrationContext):
    counter = df.EntityId("Counter", context.get_input())
    yield context.call_entity(counter, "add", 1)
    try:
        yield context.call_entity(counter, "fail")
    except Exception as error:
        failure = str(error)
    else:
        failure = None
    value = yield context.call_entity(counter, "get")
    return {"failure": failure, "value": value}


@app.orchestration_trigger(context_name="context")
def signal_then_read(context: df.DurableOrchestrationContext):
    counter = df.EntityId("Counter", context.get_input())
    context.signal_entity(counter, "add", 10)
    return (yield context.call_entity(counter, "get"))


@app.orchestration_trigger(context_name="context")
def call_against_a_deadline(context: df.DurableOrchestrationContext):
    """A quick entity call against an hour's deadline: on virtual time the call must win."""
    deadline = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    call = context.call_entity(df.EntityId("Counter", context.get_input()), "add", 1)
    winner = yield context.task_any([call, deadline])
    if winner == call:
        deadline.cancel()
        return "call"
    return "deadline"


@app.orchestration_trigger(context_name="context")
def signal_on_go(context: df.DurableOrchestrationContext):
    """Signals once, then once more after "Go", then ends on "Done"."""
    counter = df.EntityId("Counter", context.get_input())
    context.signal_entity(counter, "add", 1)
    yield context.wait_for_external_event("Go")
    context.signal_entity(counter, "add", 10)
    yield context.wait_for_external_event("Done")
    return "done"


@app.orchestration_trigger(context_name="context")
def signal_and_finish(context: df.DurableOrchestrationContext):
    context.signal_entity(df.EntityId("Counter", context.get_input()), "add", 10)
    return "sent"


@app.orchestration_trigger(context_name="context")
def signal_after_continuing(context: df.DurableOrchestrationContext):
    """Continues as new on "Go"; the next generation signals once and waits for "Done"."""
    key = context.get_input()
    if isinstance(key, dict):
        context.signal_entity(df.EntityId("Counter", key["key"]), "add", 1)
        yield context.wait_for_external_event("Done")
        return "done"
    yield context.wait_for_external_event("Go")
    context.continue_as_new({"key": key})
    return None


@app.orchestration_trigger(context_name="context")
def signal_and_wait(context: df.DurableOrchestrationContext):
    """Signals the counter once, then waits for "Done"."""
    context.signal_entity(df.EntityId("Counter", context.get_input()), "add", 1)
    yield context.wait_for_external_event("Done")
    return "done"


@app.orchestration_trigger(context_name="context")
def parent_of_a_signaller(context: df.DurableOrchestrationContext):
    key = context.get_input()
    return (yield context.call_sub_orchestrator("signal_and_wait", key, f"{key}-child"))


@app.orchestration_trigger(context_name="context")
def call_and_finish(context: df.DurableOrchestrationContext):
    return (yield context.call_entity(df.EntityId("Counter", context.get_input()), "add", 1))


@app.orchestration_trigger(context_name="context")
def start_child(context: df.DurableOrchestrationContext):
    return (yield context.call_sub_orchestrator("signal_and_finish", "k", context.get_input()))


INDEX = index_app(app)
