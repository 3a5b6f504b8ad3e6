"""The orchestrations the crash-point enumeration drives: one per kind of durable work.

Activities are ``async`` so that they run on the event loop, not in the worker pool: the order
of the engine's storage writes then depends on little but the crash point. Each one lets a
few milliseconds pass, so that the group commit writes the states in between and a crash
can fall there too.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import azure.durable_functions as df

from devhost.app.loader import index_app

app = df.DFApp()

RACE_TIMEOUT = timedelta(hours=1)
ACTIVITY_SECONDS = 0.003


@app.activity_trigger(input_name="value")
async def shout(value: str) -> str:
    await asyncio.sleep(ACTIVITY_SECONDS)
    return value.upper()


@app.activity_trigger(input_name="value")
async def square(value: int) -> int:
    await asyncio.sleep(ACTIVITY_SECONDS * (value + 1))  # results arrive one by one
    return value * value


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    words = []
    for word in context.get_input():
        words.append((yield context.call_activity("shout", word)))
    return words


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    squares = yield context.task_all(
        [context.call_activity("square", n) for n in range(context.get_input())]
    )
    return sum(squares)


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    named = context.call_sub_orchestrator("chain", ["a", "b"], f"{context.instance_id}-named")
    numbered = context.call_sub_orchestrator("fan_out", 3)
    return (yield context.task_all([named, numbered]))


@app.orchestration_trigger(context_name="context")
def collect(context: df.DurableOrchestrationContext):
    """One "Add" per generation until three values: events raised together carry over."""
    values = context.get_input() or []
    value = yield context.wait_for_external_event("Add")
    values = [*values, value]
    if len(values) < 3:
        context.continue_as_new(values)
        return None
    return values


@app.orchestration_trigger(context_name="context")
def count_with_entity(context: df.DurableOrchestrationContext):
    counter = df.EntityId("Tally", context.get_input())
    context.signal_entity(counter, "add", 10)
    after_add = yield context.call_entity(counter, "add", 5)
    return after_add


@app.orchestration_trigger(context_name="context")
def count_twice(context: df.DurableOrchestrationContext):
    """Two calls in a row: a crash between sending the second and recording it leaves the
    second request in the entity's inbox, to be answered before the first answer comes again."""
    counter = df.EntityId("Tally", context.get_input())
    first = yield context.call_entity(counter, "add", 5)
    second = yield context.call_entity(counter, "add", 7)
    return [first, second]


@app.entity_trigger(context_name="context")
def Tally(context: df.DurableEntityContext) -> None:  # noqa: N802 - entity names are public
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
    context.set_state(value)
    context.set_result(value)


@app.orchestration_trigger(context_name="context")
def race(context: df.DurableOrchestrationContext):
    """An event against a timer: whichever the history holds first wins."""
    deadline = context.create_timer(context.current_utc_datetime + RACE_TIMEOUT)
    event = context.wait_for_external_event("Go")
    winner = yield context.task_any([deadline, event])
    if winner == event:
        deadline.cancel()
        return {"event": event.result}
    return {"event": None}


@app.orchestration_trigger(context_name="context")
def wait_forever(context: df.DurableOrchestrationContext):
    return (yield context.wait_for_external_event("Never"))


@app.orchestration_trigger(context_name="context")
def echo_input(context: df.DurableOrchestrationContext):
    yield context.call_activity("shout", "x")
    return context.get_input()


INDEX = index_app(app)
