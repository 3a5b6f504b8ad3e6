"""Chaining, fan-out/fan-in and sub-orchestrations, for the engine conformance tests."""

from __future__ import annotations

from datetime import timedelta

import azure.durable_functions as df

from devhost.app.loader import index_app

app = df.DFApp()

CITIES = ["Tokyo", "Seattle", "London"]


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="value")
def double(value: int) -> int:
    return value * 2


@app.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext):
    greetings = []
    for city in CITIES:
        greetings.append((yield context.call_activity("say_hello", city)))
    return greetings


@app.orchestration_trigger(context_name="context")
def shrinking(context: df.DurableOrchestrationContext):
    """A first generation of one call per city that waits for "Shrink", then a second one
    that only returns."""
    if context.get_input() == "again":
        return "done"
    for city in CITIES:
        yield context.call_activity("say_hello", city)
    yield context.wait_for_external_event("Shrink")
    context.continue_as_new("again")
    return None


@app.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext):
    count = context.get_input()
    results = yield context.task_all([context.call_activity("double", i) for i in range(count)])
    return results


@app.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    greeting = yield context.call_activity("say_hello", context.get_input())
    return {
        "greeting": greeting,
        "instanceId": context.instance_id,
        "parentInstanceId": context.parent_instance_id,
    }


@app.orchestration_trigger(context_name="context")
def parent_default_id(context: df.DurableOrchestrationContext):
    return (yield context.call_sub_orchestrator("child", "Oslo"))


@app.orchestration_trigger(context_name="context")
def parent_explicit_id(context: df.DurableOrchestrationContext):
    child_id = f"{context.instance_id}-child"
    return (yield context.call_sub_orchestrator("child", "Lima", child_id))


@app.orchestration_trigger(context_name="context")
def failing_child(context: df.DurableOrchestrationContext):
    yield context.call_activity("say_hello", "doomed")
    raise ValueError("child broke")


@app.orchestration_trigger(context_name="context")
def parent_of_failing_child(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("failing_child")
    except Exception as error:
        return {"caught": str(error)}
    return {"caught": None}


@app.orchestration_trigger(context_name="context")
def parent_not_catching(context: df.DurableOrchestrationContext):
    return (yield context.call_sub_orchestrator("failing_child"))


@app.orchestration_trigger(context_name="context")
def child_against_a_deadline(context: df.DurableOrchestrationContext):
    """A quick child against an hour's deadline: on virtual time the child must still win."""
    deadline = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    child = context.call_sub_orchestrator("child", "Rome")
    winner = yield context.task_any([child, deadline])
    if winner == child:
        deadline.cancel()
        return "child"
    return "deadline"


INDEX = index_app(app)
