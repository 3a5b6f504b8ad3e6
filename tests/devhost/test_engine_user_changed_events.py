"""The SDK's HistoryEvent objects kept per instance (orchestration_context.parsed_context) serve
every episode, and the SDK hands them to user code (``context.histories``, whose
``is_processed`` is a public setter). On the real host every episode parses its events anew:
what one episode's code did to them is not seen by the next, here either."""

from __future__ import annotations

import azure.durable_functions as df

from devhost.app.loader import index_app
from devhost.testing import DurableTestHost

app = df.DFApp()


@app.activity_trigger(input_name="value")
def echo(value: str) -> str:
    return value


@app.orchestration_trigger(context_name="context")
def marks_processed(context: df.DurableOrchestrationContext):
    # Every episode: were all the events handed to this episode fresh (is_processed False,
    # as HistoryEvent.__init__ makes them)? Then mark them processed.
    fresh = all(not event.is_processed for event in context.histories)
    for event in context.histories:
        event.is_processed = True
    yield context.call_activity("echo", "a")
    yield context.call_activity("echo", "b")
    return fresh


@app.orchestration_trigger(context_name="context")
def edits_an_event(context: df.DurableOrchestrationContext):
    # User code that changes a value reachable from an event (the ExecutionStarted's
    # OrchestrationInstance dict): a fresh parse gives the stored value back each episode.
    started = context.histories[1].OrchestrationInstance
    before = dict(started)
    started["ExecutionId"] = "changed"
    yield context.call_activity("echo", "a")
    return before["ExecutionId"] != "changed"


INDEX = index_app(app)


async def test_is_processed_set_by_one_episode_is_not_seen_by_the_next() -> None:
    async with DurableTestHost(index=INDEX) as host:
        status = await host.run("marks_processed")
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] is True


async def test_a_value_user_code_changed_is_not_seen_by_the_next_episode() -> None:
    async with DurableTestHost(index=INDEX) as host:
        status = await host.run("edits_an_event")
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] is True
