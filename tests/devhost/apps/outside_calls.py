"""``call_http`` and activities that reach outside services, for the engine tests."""

from __future__ import annotations

import threading

import azure.durable_functions as df

from devhost.app.loader import index_app

app = df.DFApp()

# The recovery tests hold ``slow_step`` inside its body and count how often it starts.
release_slow_step = threading.Event()
slow_step_started = threading.Event()
slow_step_calls = 0


@app.activity_trigger(input_name="amount")
def charge_card(amount: int) -> dict:
    raise ConnectionError("the payment provider is unreachable from tests")


@app.activity_trigger(input_name="value")
def slow_step(value: str) -> str:
    global slow_step_calls
    slow_step_calls += 1
    slow_step_started.set()
    # Released by the test (or its fixture's teardown); the limit only keeps a worker thread
    # from waiting forever. It must outlast the host's stop grace (5 s) on a loaded machine,
    # or the step would end inside the first host and never run again.
    release_slow_step.wait(timeout=120)
    return f"slow {value}"


@app.orchestration_trigger(context_name="context")
def post_order(context: df.DurableOrchestrationContext):
    response = yield context.call_http(
        "POST", context.get_input(), content={"sku": "A1"}, headers={"X-Order": "42"}
    )
    return response


@app.orchestration_trigger(context_name="context")
def checkout(context: df.DurableOrchestrationContext):
    receipt = yield context.call_activity("charge_card", 30)
    return receipt


@app.activity_trigger(input_name="value")
def shout(value: str) -> str:
    return value.upper()


@app.orchestration_trigger(context_name="context")
def approve_then_shout(context: df.DurableOrchestrationContext):
    approval = yield context.wait_for_external_event("Approve")
    return (yield context.call_activity("shout", approval))


@app.orchestration_trigger(context_name="context")
def runs_slow_step(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("slow_step", context.get_input()))


INDEX = index_app(app)
