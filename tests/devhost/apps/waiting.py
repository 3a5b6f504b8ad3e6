"""Timers, external events, continue-as-new and custom status, for the engine tests."""

from __future__ import annotations

from datetime import timedelta

import azure.durable_functions as df

from devhost.app.loader import index_app

app = df.DFApp()

APPROVAL_TIMEOUT = timedelta(hours=1)


@app.activity_trigger(input_name="value")
def echo(value: str) -> str:
    return value


@app.orchestration_trigger(context_name="context")
def sleep_30_days(context: df.DurableOrchestrationContext):
    before = context.current_utc_datetime
    yield context.create_timer(before + timedelta(days=30))
    return {"before": before.isoformat(), "after": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    """Waits for "Approve" or a timeout, cancelling the timer when the event wins."""
    deadline = context.create_timer(context.current_utc_datetime + APPROVAL_TIMEOUT)
    approved = context.wait_for_external_event("Approve")
    winner = yield context.task_any([deadline, approved])
    if winner == approved:
        deadline.cancel()
        return {"approved": approved.result}
    return {"approved": None}


@app.orchestration_trigger(context_name="context")
def approval_forgetting_the_timer(context: df.DurableOrchestrationContext):
    """Like ``approval`` but never cancels the timer: the host keeps it Running (§3.10)."""
    deadline = context.create_timer(context.current_utc_datetime + APPROVAL_TIMEOUT)
    approved = context.wait_for_external_event("Approve")
    winner = yield context.task_any([deadline, approved])
    return {"approved": approved.result if winner == approved else None}


@app.orchestration_trigger(context_name="context")
def wait_for_approve(context: df.DurableOrchestrationContext):
    return (yield context.wait_for_external_event("Approve"))


@app.orchestration_trigger(context_name="context")
def timer_then_event(context: df.DurableOrchestrationContext):
    """Only starts waiting for "Go" after an hour."""
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    return (yield context.wait_for_external_event("Go"))


@app.orchestration_trigger(context_name="context")
def collect(context: df.DurableOrchestrationContext):
    """Collects one "Add" event per generation until it has three values."""
    state = context.get_input() or {"values": []}
    context.set_custom_status({"generation": len(state["values"])})
    value = yield context.wait_for_external_event("Add")
    values = [*state["values"], value]
    if len(values) < 3:
        context.continue_as_new({"values": values})
        return None
    return values


@app.orchestration_trigger(context_name="context")
def countdown(context: df.DurableOrchestrationContext):
    remaining = context.get_input()
    if remaining > 0:
        context.continue_as_new(remaining - 1)
        return None
    return f"liftoff after generation {context.get_input()}"


@app.orchestration_trigger(context_name="context")
def falsy_custom_status(context: df.DurableOrchestrationContext):
    context.set_custom_status(context.get_input())
    yield context.wait_for_external_event("Finish")
    return "done"


@app.orchestration_trigger(context_name="context")
def custom_status_stages(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "waiting"})
    yield context.wait_for_external_event("Next")
    context.set_custom_status({"stage": "working"})
    yield context.call_activity("echo", "x")
    yield context.wait_for_external_event("Next")
    return "done"


@app.orchestration_trigger(context_name="context")
def either_event_in_a_loop(context: df.DurableOrchestrationContext):
    """Each round waits for "A" or "B"; the loser's wait is abandoned."""
    received = []
    while len(received) < 4:
        winner = yield context.task_any(
            [context.wait_for_external_event("A"), context.wait_for_external_event("B")]
        )
        received.append(winner.result)
    return received


@app.orchestration_trigger(context_name="context")
def shown_then_waiting(context: df.DurableOrchestrationContext):
    """Says where it is after "Start", then waits for "Go": only its custom status says so."""
    context.set_custom_status("working")
    yield context.wait_for_external_event("Start")
    context.set_custom_status("waiting for Go")
    return (yield context.wait_for_external_event("Go"))


@app.orchestration_trigger(context_name="context")
def shown_when_done(context: df.DurableOrchestrationContext):
    """Completes on "Go" (at once when its input is true); only its custom status says so."""
    if not context.get_input():
        context.set_custom_status("working")
        yield context.wait_for_external_event("Go")
    context.set_custom_status("done")
    return "finished"


INDEX = index_app(app)
