"""An orchestration that finishes when the test opens a gate (an activity waits for it), so a
test can make an instance end at a moment of its choosing (while storage is down, say)."""

from __future__ import annotations

import threading

import azure.durable_functions as df

from devhost.app.loader import index_app

app = df.DFApp()

GATE = threading.Event()


@app.activity_trigger(input_name="value")
def wait_for_gate(value: int) -> int:
    if not GATE.wait(timeout=60):
        raise TimeoutError("the test never opened the gate")
    return value + 1


@app.orchestration_trigger(context_name="context")
def gated(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("wait_for_gate", context.get_input())
    return result


INDEX = index_app(app)
