"""What the periodic group commit writes, and what it leaves for a later one."""

from __future__ import annotations

import asyncio
import json

import azure.durable_functions as df

from devhost.app.loader import index_app
from devhost.engine.history import EventType
from devhost.engine.runtime import ActivityOverride, Engine, EngineSettings
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


@app.orchestration_trigger(context_name="context")
def long_chain(context: df.DurableOrchestrationContext):
    for step in range(1, 31):
        context.set_custom_status(step)
        yield context.call_activity("say_hello", str(step))
    return "done"


INDEX = index_app(app)


def _engine(store: MemoryStore, say_hello: ActivityOverride, *, max_delay: float) -> Engine:
    """An engine with a group commit every 10 ms, running ``say_hello`` as the activity."""
    return Engine(
        INDEX,
        store,
        task_hub="hub",
        settings=EngineSettings(checkpoint_interval=0.01, checkpoint_max_delay=max_delay),
        activity_overrides={"say_hello": say_hello},
    )


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
    # max_delay far above the test's length: only the rule under test can skip it.
    engine = _engine(store, slow_hello, max_delay=600)
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
    engine = _engine(store, hello, max_delay=600)
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


async def _rows_seen_by_a_chain(max_delay: float, activity_seconds: float) -> list[str | None]:
    """Runs ``long_chain``; the custom status of its stored row as each activity starts."""
    rows_seen: list[str | None] = []

    async def hello(name: str) -> str:
        row = store.instances.get("chain")
        rows_seen.append(row.custom_status if row else None)
        await asyncio.sleep(activity_seconds)
        return f"Hello {name}!"

    store = MemoryStore("hub")
    engine = _engine(store, hello, max_delay=max_delay)
    await engine.start()
    try:
        await engine.start_new("long_chain", "chain", None)
        status = await engine.wait_for_completion("chain", 60)
        assert status is not None and status["runtimeStatus"] == "Completed"
    finally:
        await engine.stop()
    return rows_seen


async def test_a_running_instance_s_stored_row_keeps_up_with_a_long_chain_of_activities() -> None:
    """Before each activity starts, the host stores the episode's history (the row may wait:
    nothing a crash could lose is in it); the row itself, with the custom status the app
    sets, is stored about ``max_delay`` later rather than only at the end."""
    # Activities that take a while: the chain outlasts max_delay.
    rows_seen = await _rows_seen_by_a_chain(max_delay=0.05, activity_seconds=0.02)
    assert len(rows_seen) == 30
    # The first write stores the row (Pending to Running, status 1); later ones followed.
    assert rows_seen[0] == "1"
    assert set(rows_seen[1:-1]) - {"1"}, f"the stored row stayed behind: {rows_seen}"


async def test_with_no_delay_allowed_each_activity_starts_with_the_row_stored_too() -> None:
    """``checkpoint_max_delay=0``: the row may never lag, so the write before each activity
    stores it as well (the custom status the app set before calling it)."""
    rows_seen = await _rows_seen_by_a_chain(max_delay=0, activity_seconds=0)
    assert rows_seen == [str(step) for step in range(1, 31)]
