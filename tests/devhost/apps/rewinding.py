"""Orchestrations that fail on a switchable activity, for the rewind tests."""

from __future__ import annotations

from collections import Counter

import azure.durable_functions as df

from devhost.app.loader import index_app

app = df.DFApp()

broken: set[str] = set()  # values the "fragile" activity currently fails on
calls: Counter[str] = Counter()  # activity executions by "name:value"


@app.activity_trigger(input_name="value")
def steady(value: str) -> str:
    calls[f"steady:{value}"] += 1
    return value.upper()


@app.activity_trigger(input_name="value")
def fragile(value: str) -> str:
    calls[f"fragile:{value}"] += 1
    if value in broken:
        raise RuntimeError(f"{value} is broken")
    return value.upper()


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("steady", "a")
    second = yield context.call_activity("fragile", "b")
    third = yield context.call_activity("steady", "c")
    return [first, second, third]


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    tasks = [context.call_activity("fragile", value) for value in ("x", "y", "z")]
    return (yield context.task_all(tasks))


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    before = yield context.call_activity("steady", "p")
    child = yield context.call_sub_orchestrator("chain", None, f"{context.instance_id}-child")
    return [before, child]


@app.orchestration_trigger(context_name="context")
def with_retries(context: df.DurableOrchestrationContext):
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=2)
    return (yield context.call_activity_with_retry("fragile", retry, "r"))


WIDE = 100  # branches of wide_fan_out: its history needs more than two transactions


@app.orchestration_trigger(context_name="context")
def wide_fan_out(context: df.DurableOrchestrationContext):
    tasks = [context.call_activity("fragile", f"w{n}") for n in range(WIDE)]
    return (yield context.task_all(tasks))


INDEX = index_app(app)
