"""Task chaining run for real: started through the generic starter, retried with exponential
backoff on durable timers (virtual clock), compensated by the error handler."""

from datetime import datetime
from typing import Any

import pytest
from yarl import URL

from blueprints.app_storage import table
from blueprints.chaining.steps import INCIDENTS_TABLE, attempts_of
from devhost.testing import DurableTestHost

# Run once with a connection string and once identity-based (a token, no account key).
pytestmark = [pytest.mark.usefixtures("app_storage"), pytest.mark.both_storage_paths]


def steps(**second_step: Any) -> list[dict[str, Any]]:
    return [
        {"name": "double", "operation": "multiply", "argument": 2},
        {"name": "add-ten", "operation": "add", "argument": 10, **second_step},
        {"name": "triple", "operation": "multiply", "argument": 3},
    ]


async def run_chain(host: DurableTestHost, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    client = await host.http()
    response = await client.post("/api/orchestrators/chain_with_compensation", json=body)
    assert response.status == 202
    assert response.headers["Location"] and response.headers["Retry-After"]
    instance_id = (await response.json())["id"]
    status = await host.wait(instance_id)
    polled = await client.get(URL(response.headers["Location"]).path_qs)
    assert polled.status == 200
    assert (await polled.json())["output"] == status["output"]
    assert status["runtimeStatus"] == "Completed"
    return status, instance_id


async def test_each_step_feeds_the_next(async_durable_host: DurableTestHost) -> None:
    status, instance_id = await run_chain(async_durable_host, {"steps": steps(), "input": 5})

    output = status["output"]
    assert output["outcome"] == "completed"
    assert output["output"] == 60
    assert [(s["name"], s["value"], s["attempts"]) for s in output["steps"]] == [
        ("double", 10, 1),
        ("add-ten", 20, 1),
        ("triple", 60, 1),
    ]
    assert status["customStatus"]["stage"] == "done"
    assert len(attempts_of(instance_id)) == 3


async def test_a_flaky_step_is_retried_with_exponential_backoff(
    async_durable_host: DurableTestHost,
) -> None:
    retry = {"maxAttempts": 4, "firstRetryIntervalSeconds": 1, "backoffCoefficient": 2}
    status, instance_id = await run_chain(
        async_durable_host, {"steps": steps(failTimes=3, retry=retry), "input": 5}
    )

    assert status["output"]["output"] == 60
    assert status["output"]["steps"][1]["attempts"] == 4
    tries = [row for row in attempts_of(instance_id) if row["Step"] == "add-ten"]
    assert [row["Outcome"] for row in tries] == ["fault", "fault", "fault", "ran"]
    times = [datetime.fromisoformat(str(row["ScheduledAt"])) for row in tries]
    gaps = [
        (later - earlier).total_seconds() for earlier, later in zip(times, times[1:], strict=False)
    ]
    assert gaps == pytest.approx([1.0, 2.0, 4.0], abs=0.01)


async def test_exhausted_retries_run_the_error_handler(async_durable_host: DurableTestHost) -> None:
    retry = {"maxAttempts": 3, "firstRetryIntervalSeconds": 30, "maxRetryIntervalSeconds": 45}
    status, instance_id = await run_chain(
        async_durable_host, {"steps": steps(failTimes=5, retry=retry), "input": 5}
    )

    output = status["output"]
    assert output["outcome"] == "compensated"
    assert output["failedStep"] == "add-ten"
    assert "could not reach its downstream (attempt 3)" in output["error"]
    assert output["compensated"] == ["double"]
    assert [s["name"] for s in output["steps"]] == ["double", "add-ten"]  # triple never ran
    assert status["customStatus"]["stage"] == "compensated"
    tries = [row for row in attempts_of(instance_id) if row["Step"] == "add-ten"]
    times = [datetime.fromisoformat(str(row["ScheduledAt"])) for row in tries]
    assert [
        (b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)
    ] == pytest.approx([30, 45], abs=0.01)
    incident = table(INCIDENTS_TABLE).get_entity(instance_id, "incident")
    assert incident["FailedStep"] == "add-ten"


async def test_a_business_error_is_not_retried(async_durable_host: DurableTestHost) -> None:
    status, _ = await run_chain(async_durable_host, {"steps": steps(), "input": "five"})

    output = status["output"]
    assert output["outcome"] == "compensated"
    assert output["failedStep"] == "double"
    assert output["steps"][0]["attempts"] == 1
    assert output["error"].startswith("invalid_operand")
    assert output["compensated"] == []


async def test_the_starter_rejects_a_bad_chain(async_durable_host: DurableTestHost) -> None:
    client = await async_durable_host.http()
    response = await client.post(
        "/api/orchestrators/chain_with_compensation",
        json={"steps": [{"name": "x", "operation": "divide"}]},
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"]["details"][0]["field"] == "steps[0].operation"
