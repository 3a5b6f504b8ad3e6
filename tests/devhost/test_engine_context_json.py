"""Each episode's context JSON (which keeps played events' text from the episode before) is
the text one ``json.dumps`` of the whole payload gives."""

from __future__ import annotations

import json
from typing import Any

from devhost.engine.history import EventType
from devhost.engine.instance import Instance
from devhost.engine.orchestration_context import context_json
from devhost.testing import DurableTestHost
from tests.devhost.apps.sequences import INDEX


def whole_dumps(instance: Instance, history: list[dict[str, Any]]) -> str:
    """The payload as one json.dumps, every event marked played before the last episode."""
    starts = [i for i, e in enumerate(history) if e["EventType"] == EventType.OrchestratorStarted]
    last = max(starts, default=0)
    stored_input = history[1].get("Input") if len(history) > 1 else None
    return json.dumps(
        {
            "history": [{**e, "IsPlayed": i < last} for i, e in enumerate(history)],
            "input": json.loads(stored_input) if stored_input is not None else None,
            "instanceId": instance.instance_id,
            "isReplaying": last > 1,
            "parentInstanceId": instance.parent_instance_id,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
            "longRunningTimerIntervalDuration": "3.00:00:00",
            "maximumShortTimerDuration": "6.00:00:00",
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }
    )


def episodes(history: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The history each episode was run with: up to each OrchestratorCompleted."""
    ends = [i for i, e in enumerate(history) if e["EventType"] == EventType.OrchestratorCompleted]
    return [history[:end] for end in ends]


async def finished_instance(name: str) -> Instance:
    async with DurableTestHost(index=INDEX) as host:
        status = await host.run(name)
        assert status["runtimeStatus"] == "Completed"
        return host.engine.instances[status["instanceId"]]


async def test_every_episode_sends_the_whole_payload() -> None:
    instance = await finished_instance("hello_sequence")
    runs = episodes(instance.history)
    assert len(runs) == 4

    for history in runs:  # in order, as the engine runs them: each reuses the one before
        assert context_json(instance, history) == whole_dumps(instance, history)
    for history in reversed(runs):  # and out of order
        assert context_json(instance, history) == whole_dumps(instance, history)


async def test_a_replaced_event_is_sent_as_it_is_now() -> None:
    instance = await finished_instance("hello_sequence")
    history = list(episodes(instance.history)[-1])
    context_json(instance, history)
    completed = next(i for i, e in enumerate(history) if e["EventType"] == EventType.TaskCompleted)
    history[completed] = {**history[completed], "Result": '"rewritten"'}

    text = context_json(instance, history)

    assert text == whole_dumps(instance, history)
    assert '"rewritten"' in json.loads(text)["history"][completed]["Result"]
