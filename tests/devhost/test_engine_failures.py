"""Activity errors, compensation, broken orchestrators and host-side refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from devhost.engine.history import EventType
from devhost.testing import DurableTestHost
from tests.devhost.apps import failures
from tests.devhost.apps.failures import INDEX


@pytest.fixture
async def host() -> AsyncIterator[DurableTestHost]:
    async with DurableTestHost(index=INDEX) as test_host:
        yield test_host


@pytest.fixture
def renamed_step_later() -> Iterator[None]:
    yield
    failures.use_renamed_step = False


async def test_uncaught_activity_error_fails_with_both_function_names(
    host: DurableTestHost,
) -> None:
    status = await host.run("uncaught_activity_error")

    assert status["runtimeStatus"] == "Failed"
    # Two spaces after "failed:": the extension keeps the space after "Exception:" (§4.3).
    assert status["output"].startswith(
        "Orchestrator function 'uncaught_activity_error' failed: "
        "Activity function 'explode' failed:  ValueError: boom"
    )


async def test_failed_activity_is_recorded_as_task_failed(host: DurableTestHost) -> None:
    instance_id = await host.start("uncaught_activity_error")
    await host.wait(instance_id)

    history = host.engine.instances[instance_id].history
    failed = [e for e in history if e["EventType"] == EventType.TaskFailed]
    assert len(failed) == 1
    assert failed[0]["TaskScheduledId"] == 0
    assert failed[0]["Reason"] == "Activity function 'explode' failed:  ValueError: boom"
    assert failed[0]["Details"]
    completed = [e for e in history if e["EventType"] == EventType.ExecutionCompleted]
    assert completed[0]["OrchestrationStatus"] == 3  # Failed


async def test_caught_activity_error_lets_the_orchestrator_complete(
    host: DurableTestHost,
) -> None:
    status = await host.run("caught_activity_error")

    assert status["runtimeStatus"] == "Completed"
    # The SDK raises Exception(f"{Reason} \n {Details}").
    assert status["output"]["caught"].startswith(
        "Activity function 'explode' failed:  ValueError: boom \n "
    )


async def test_compensation_runs_after_a_failed_step(host: DurableTestHost) -> None:
    status = await host.run("trip_with_compensation")

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {
        "booked": ["booked hotel", "booked car"],
        "undone": ["cancelled car", "cancelled hotel"],
        "error": "Activity function 'book' failed:  ValueError: no seats left",
    }


async def test_output_that_is_not_json_fails_the_orchestration(host: DurableTestHost) -> None:
    status = await host.run("returns_a_set")

    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == (
        "Orchestrator function 'returns_a_set' failed: Object of type set is not JSON serializable"
    )


async def test_changed_orchestrator_code_is_detected_as_non_deterministic(
    host: DurableTestHost, renamed_step_later: None
) -> None:
    instance_id = await host.start("changes_its_mind")
    await host.idle()
    assert (await host.status(instance_id) or {})["runtimeStatus"] == "Running"

    failures.use_renamed_step = True  # "deploy" a change while the instance waits
    await host.raise_event(instance_id, "Continue", "go")
    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "Orchestrator function 'changes_its_mind' failed: Non-Deterministic workflow detected: "
    )
    assert "step_one" in status["output"]


async def test_unchanged_orchestrator_replays_without_complaint(host: DurableTestHost) -> None:
    instance_id = await host.start("changes_its_mind")
    await host.idle()
    await host.raise_event(instance_id, "Continue", "go")

    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["a", '"go"']


async def test_unknown_activity_fails_with_the_known_names(host: DurableTestHost) -> None:
    status = await host.run("calls_unknown_activity")

    assert status["runtimeStatus"] == "Failed"
    output = status["output"]
    assert output.startswith(
        "Orchestrator function 'calls_unknown_activity' failed: The function 'no_such_activity' "
        "doesn't exist, is disabled, or is not an activity function. Additional info: "
        "The following are the known activity functions: "
    )
    for known in ("'explode'", "'flaky'", "'book'", "'cancel'"):
        assert known in output
    assert "'calls_unknown_activity'" not in output.split("Additional info:")[1]
