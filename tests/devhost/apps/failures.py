"""Activity failures, retries, compensation and broken orchestrators, for the engine tests."""

from __future__ import annotations

import threading
from collections import Counter

import azure.durable_functions as df

from devhost.app.loader import index_app

app = df.DFApp()

# Attempts per key, so tests using different keys do not interfere.
attempts: Counter[str] = Counter()
_attempts_lock = threading.Lock()

# Flipped by the non-determinism test between two episodes of the same instance.
use_renamed_step = False

RETRY_INTERVAL_MS = 5000


@app.activity_trigger(input_name="note")
def explode(note: str) -> None:
    raise ValueError("boom")


@app.activity_trigger(input_name="job")
def flaky(job: dict) -> int:
    """Fails until it has been called ``job["succeed_on"]`` times for ``job["key"]``."""
    with _attempts_lock:
        attempts[job["key"]] += 1
        attempt = attempts[job["key"]]
    if attempt < job["succeed_on"]:
        raise RuntimeError(f"attempt {attempt} failed")
    return attempt


@app.activity_trigger(input_name="booking")
def book(booking: str) -> str:
    if booking == "flight":
        raise ValueError("no seats left")
    return f"booked {booking}"


@app.activity_trigger(input_name="booking")
def cancel(booking: str) -> str:
    return f"cancelled {booking}"


@app.activity_trigger(input_name="value")
def step_one(value: str) -> str:
    return value


@app.activity_trigger(input_name="value")
def step_renamed(value: str) -> str:
    return value


@app.orchestration_trigger(context_name="context")
def uncaught_activity_error(context: df.DurableOrchestrationContext):
    yield context.call_activity("explode", "x")
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def caught_activity_error(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("explode", "x")
    except Exception as error:
        return {"caught": str(error)}
    return {"caught": None}


@app.orchestration_trigger(context_name="context")
def trip_with_compensation(context: df.DurableOrchestrationContext):
    done = []
    try:
        for booking in ("hotel", "car", "flight"):
            done.append((yield context.call_activity("book", booking)))
    except Exception as error:
        undone = []
        for booking in ("car", "hotel"):
            undone.append((yield context.call_activity("cancel", booking)))
        return {"booked": done, "undone": undone, "error": str(error).split(" \n ")[0]}
    return {"booked": done}


@app.orchestration_trigger(context_name="context")
def with_retry(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(RETRY_INTERVAL_MS, context.get_input()["max_attempts"])
    return (yield context.call_activity_with_retry("flaky", options, context.get_input()))


@app.orchestration_trigger(context_name="context")
def with_retry_caught(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(RETRY_INTERVAL_MS, context.get_input()["max_attempts"])
    try:
        yield context.call_activity_with_retry("flaky", options, context.get_input())
    except Exception as error:
        return {"caught": str(error).split(" \n ")[0]}
    return {"caught": None}


@app.orchestration_trigger(context_name="context")
def flaky_child(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("flaky", context.get_input()))


@app.orchestration_trigger(context_name="context")
def retries_child(context: df.DurableOrchestrationContext):
    job = context.get_input()
    options = df.RetryOptions(RETRY_INTERVAL_MS, job["max_attempts"])
    child_id = job.get("child_id")
    return (yield context.call_sub_orchestrator_with_retry("flaky_child", options, job, child_id))


@app.orchestration_trigger(context_name="context")
def returns_a_set(context: df.DurableOrchestrationContext):
    yield context.call_activity("step_one", "a")
    return {1, 2, 3}


@app.orchestration_trigger(context_name="context")
def changes_its_mind(context: df.DurableOrchestrationContext):
    step = "step_renamed" if use_renamed_step else "step_one"
    first = yield context.call_activity(step, "a")
    go = yield context.wait_for_external_event("Continue")
    return [first, go]


@app.orchestration_trigger(context_name="context")
def calls_unknown_activity(context: df.DurableOrchestrationContext):
    yield context.call_activity("no_such_activity", None)
    return "unreachable"


INDEX = index_app(app)
