"""Function chaining, fan-out/fan-in and sub-orchestrations through the real SDK replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from devhost.engine.history import EventType
from devhost.testing import DurableTestHost
from tests.devhost.apps.sequences import CITIES, INDEX


@pytest.fixture
async def host() -> AsyncIterator[DurableTestHost]:
    async with DurableTestHost(index=INDEX) as test_host:
        yield test_host


def raw_history(host: DurableTestHost, instance_id: str) -> list[dict[str, Any]]:
    return host.engine.instances[instance_id].history


def of_type(history: list[dict[str, Any]], event_type: EventType) -> list[dict[str, Any]]:
    return [event for event in history if event["EventType"] == event_type]


async def test_chaining_returns_every_activity_result_in_order(host: DurableTestHost) -> None:
    status = await host.run("hello_sequence")

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == [f"Hello {city}!" for city in CITIES]


async def test_chaining_history_has_one_episode_per_activity(host: DurableTestHost) -> None:
    instance_id = await host.start("hello_sequence")
    await host.wait(instance_id)

    types = [EventType(event["EventType"]).name for event in raw_history(host, instance_id)]
    episode = ["OrchestratorStarted", "TaskCompleted", "TaskScheduled", "OrchestratorCompleted"]
    assert types == [
        "OrchestratorStarted",
        "ExecutionStarted",
        "TaskScheduled",
        "OrchestratorCompleted",
        *episode,
        *episode,
        "OrchestratorStarted",
        "TaskCompleted",
        "ExecutionCompleted",
        "OrchestratorCompleted",
    ]


async def test_scheduling_events_carry_sequence_numbers(host: DurableTestHost) -> None:
    instance_id = await host.start("hello_sequence")
    await host.wait(instance_id)
    history = raw_history(host, instance_id)

    scheduled = of_type(history, EventType.TaskScheduled)
    completed = of_type(history, EventType.TaskCompleted)
    assert [e["EventId"] for e in scheduled] == [0, 1, 2]
    assert [e["Name"] for e in scheduled] == ["say_hello"] * 3
    assert [e["TaskScheduledId"] for e in completed] == [0, 1, 2]
    assert [e["Result"] for e in completed] == [f'"Hello {city}!"' for city in CITIES]
    # Completion, started and message events carry -1; the final event takes the next number.
    assert {e["EventId"] for e in completed} == {-1}
    assert of_type(history, EventType.ExecutionCompleted)[0]["EventId"] == 3
    assert {e["EventId"] for e in of_type(history, EventType.OrchestratorStarted)} == {-1}


async def test_status_history_folds_scheduling_into_completions(host: DurableTestHost) -> None:
    instance_id = await host.start("hello_sequence")
    await host.wait(instance_id)

    status = await host.status(instance_id, history=True)

    assert status is not None
    events = status["historyEvents"]
    assert [e["EventType"] for e in events] == [
        "ExecutionStarted",
        "TaskCompleted",
        "TaskCompleted",
        "TaskCompleted",
        "ExecutionCompleted",
    ]
    assert events[0]["FunctionName"] == "hello_sequence"
    assert [e["FunctionName"] for e in events[1:4]] == ["say_hello"] * 3
    assert [e["Result"] for e in events[1:4]] == [f"Hello {city}!" for city in CITIES]
    assert events[-1]["OrchestrationStatus"] == "Completed"
    assert all("EventId" not in e and "TaskScheduledId" not in e for e in events)


async def test_fan_out_fan_in_of_200_activities(host: DurableTestHost) -> None:
    instance_id = await host.start("fan_out_fan_in", 200)
    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == [i * 2 for i in range(200)]
    history = raw_history(host, instance_id)
    assert sorted(e["EventId"] for e in of_type(history, EventType.TaskScheduled)) == list(
        range(200)
    )
    assert sorted(e["TaskScheduledId"] for e in of_type(history, EventType.TaskCompleted)) == (
        list(range(200))
    )
    assert of_type(history, EventType.ExecutionCompleted)[0]["EventId"] == 200


async def test_sub_orchestration_default_id_is_parent_execution_and_sequence(
    host: DurableTestHost,
) -> None:
    parent_id = await host.start("parent_default_id")
    status = await host.wait(parent_id)

    history = raw_history(host, parent_id)
    execution_id = history[1]["OrchestrationInstance"]["ExecutionId"]
    expected_child_id = f"{execution_id}:0"
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {
        "greeting": "Hello Oslo!",
        "instanceId": expected_child_id,
        "parentInstanceId": parent_id,
    }
    created = of_type(history, EventType.SubOrchestrationInstanceCreated)
    assert [(e["EventId"], e["Name"], e["InstanceId"]) for e in created] == [
        (0, "child", expected_child_id)
    ]
    child_status = await host.status(expected_child_id)
    assert child_status is not None and child_status["runtimeStatus"] == "Completed"


async def test_sub_orchestration_with_explicit_id(host: DurableTestHost) -> None:
    status = await host.run("parent_explicit_id")

    child_id = f"{status['instanceId']}-child"
    assert status["output"]["instanceId"] == child_id
    assert status["output"]["greeting"] == "Hello Lima!"
    child_status = await host.status(child_id)
    assert child_status is not None
    assert child_status["name"] == "child"
    assert child_status["input"] == '"Lima"'


async def test_sub_orchestration_failure_reaches_parent_as_exception(
    host: DurableTestHost,
) -> None:
    parent_id = await host.start("parent_of_failing_child")
    status = await host.wait(parent_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["caught"].startswith(
        "Orchestrator function 'failing_child' failed: child broke"
    )
    failed = of_type(raw_history(host, parent_id), EventType.SubOrchestrationInstanceFailed)
    assert len(failed) == 1
    assert failed[0]["TaskScheduledId"] == 0
    assert failed[0]["Reason"] == "Orchestrator function 'failing_child' failed: child broke"


async def test_uncaught_sub_orchestration_failure_fails_parent(host: DurableTestHost) -> None:
    status = await host.run("parent_not_catching")

    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "Orchestrator function 'parent_not_catching' failed: "
        "Orchestrator function 'failing_child' failed: child broke"
    )
