"""What the periodic group commit writes, and what it leaves for a later one."""

from __future__ import annotations

import asyncio
import json

import azure.durable_functions as df

from devhost.app.loader import index_app
from devhost.engine.history import EventType
from devhost.engine.runtime import Engine, EngineSettings
from devhost.store.memory import MemoryStore
from tests.waiting import eventually

app = df.DFApp()


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}!"


@app.orchestration_trigger(context_name="context")
def one_call(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("say_hello", "Tokyo"))


@app.orchestration_trigger(context_name="context")
def wait_for_go(context: df.DurableOrchestrationContext):
    return (yield context.wait_for_external_event("Go"))


@app.orchestration_trigger(context_name="context")
def six_calls(context: df.DurableOrchestrationContext):
    names = ["a", "b", "c", "d", "e", "last"]
    return (yield context.task_all([context.call_activity("say_hello", n) for n in names]))


INDEX = index_app(app)


def _stored_events(store: MemoryStore, instance_id: str) -> list[int]:
    stored = store.histories.get(instance_id)
    return [row["EventType"] for row in stored.rows[: stored.history_count]] if stored else []


async def test_an_activity_starts_once_its_episode_is_stored_and_is_not_written_meanwhile() -> None:
    """The episode that scheduled an activity is stored before the activity starts (a kill
    then cannot leave an effect no history records); while it runs, the periodic commits
    leave the instance alone (what they would write is stale as soon as the result comes),
    and one waiting for an event is written by those same commits."""
    running = asyncio.Event()
    release = asyncio.Event()
    seen_at_start: list[list[int]] = []

    async def slow_hello(name: str) -> str:
        seen_at_start.append(_stored_events(store, "calling"))
        running.set()
        await release.wait()
        return f"Hello {name}!"

    store = MemoryStore("hub")
    engine = Engine(
        INDEX,
        store,
        task_hub="hub",
        # max_delay far above the test's length: only the rule under test can skip it.
        settings=EngineSettings(checkpoint_interval=0.01, checkpoint_max_delay=600),
        activity_overrides={"say_hello": slow_hello},
    )
    await engine.start()
    try:
        await engine.start_new("one_call", "calling", None)
        await asyncio.wait_for(running.wait(), 60)
        assert EventType.TaskScheduled in seen_at_start[0]
        # Started after the first instance's episode: once its history is stored, a periodic
        # commit ran while the activity was running.
        waiting = await engine.start_new("wait_for_go", None, None)
        await eventually(lambda: waiting in store.histories, "the waiting instance's checkpoint")
        assert _stored_events(store, "calling") == seen_at_start[0]

        release.set()
        status = await engine.wait_for_completion("calling", 60)
        assert status is not None and status["runtimeStatus"] == "Completed"
        assert json.loads(store.instances["calling"].output or "null") == "Hello Tokyo!"
        assert store.histories["calling"].history_count == len(engine.instances["calling"].history)
    finally:
        release.set()
        await engine.stop()


async def test_an_instance_whose_activities_keep_running_is_written_once_results_pile_up() -> None:
    """Results a crash would lose (and so activities it would run again) stay few even for an
    instance that always has an activity under way."""
    release = asyncio.Event()

    async def hello(name: str) -> str:
        if name == "last":
            await release.wait()
        return f"Hello {name}!"

    store = MemoryStore("hub")
    engine = Engine(
        INDEX,
        store,
        task_hub="hub",
        settings=EngineSettings(checkpoint_interval=0.01, checkpoint_max_delay=600),
        activity_overrides={"say_hello": hello},
    )
    await engine.start()
    try:
        instance_id = await engine.start_new("six_calls", None, None)

        def stored_results() -> int:
            stored = store.histories.get(instance_id)
            rows = stored.rows[: stored.history_count] if stored else []
            return sum(1 for row in rows if row["EventType"] == EventType.TaskCompleted)

        # At most three results may wait unwritten while an activity runs.
        await eventually(lambda: stored_results() >= 4, "four of the results to be stored")
        assert not release.is_set()  # the last activity still runs
    finally:
        release.set()
        await engine.stop()
