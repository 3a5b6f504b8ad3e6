"""The generic ``saga`` sub-orchestration, run for real with stand-in activities.

The stand-ins record every call in a journal, so the tests see exactly which steps and
compensations ran and in which order.
"""

import json
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from blueprints.inventory import entity
from blueprints.saga import orchestrator
from devhost.app.loader import index_app
from devhost.testing import DurableTestHost
from models.saga import ActionCall, CompensableAction, register_compensable_action

# The action these tests' stand-in activities implement, declared as the app declares its own.
JOURNAL_STEP = register_compensable_action(
    CompensableAction(
        name="journal_step",
        forward=ActionCall(activity="do_step"),
        compensation=ActionCall(activity="undo_step"),
    )
)

journal: list[str] = []
flaky_failures: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _fresh_journal() -> None:
    journal.clear()
    flaky_failures.clear()


def _app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(orchestrator.bp)
    app.register_functions(entity.bp)

    @app.activity_trigger(input_name="payload")
    def do_step(payload: dict) -> dict:
        journal.append(f"do:{payload['name']}")
        if payload.get("fail"):
            return {"ok": False, "errorCode": "boom", "detail": f"{payload['name']} failed"}
        return {"ok": True, "name": payload["name"]}

    @app.activity_trigger(input_name="payload")
    def undo_step(payload: dict) -> dict:
        journal.append(f"undo:{payload['name']}")
        left = flaky_failures.get(payload["name"], 0)
        if left:
            flaky_failures[payload["name"]] = left - 1
            raise RuntimeError(f"undo of {payload['name']} is down")
        return {"ok": True}

    @app.orchestration_trigger(context_name="context")
    def saga_parent(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        result = yield context.call_sub_orchestrator("saga", context.get_input(), "child-saga")
        return result

    return app


@pytest.fixture
def durable_host_options() -> dict[str, Any]:
    """The durable host of these tests runs this module's own app."""
    return {"index": index_app(_app())}


def _step(name: str, fail: bool = False) -> dict[str, Any]:
    return {"name": name, "action": JOURNAL_STEP, "input": {"name": name, "fail": fail}}


@pytest.mark.parametrize("failing", [0, 1, 2, 3])
async def test_a_failure_compensates_exactly_the_earlier_steps_in_reverse(
    async_durable_host: DurableTestHost, failing: int
) -> None:
    names = ["a", "b", "c", "d"]
    steps = [_step(name, fail=index == failing) for index, name in enumerate(names)]
    status = await async_durable_host.run("saga", {"steps": steps})

    result = status["output"]
    assert result["status"] == "compensated"
    assert result["failedStep"] == names[failing]
    assert result["completed"] == names[:failing]
    earlier = list(reversed(names[:failing]))
    assert [c["step"] for c in result["compensations"]] == earlier
    assert journal == [f"do:{n}" for n in names[: failing + 1]] + [f"undo:{n}" for n in earlier]


async def test_all_steps_succeeding_completes_without_compensation(
    async_durable_host: DurableTestHost,
) -> None:
    status = await async_durable_host.run("saga", {"steps": [_step("a"), _step("b")]})

    assert status["output"]["status"] == "completed"
    assert status["output"]["outputs"]["b"] == {"ok": True, "name": "b"}
    assert journal == ["do:a", "do:b"]


async def test_a_failing_compensation_is_retried_recorded_and_the_rest_still_run(
    async_durable_host: DurableTestHost,
) -> None:
    flaky_failures["b"] = 99  # never recovers
    flaky_failures["a"] = 1  # recovers on the second try
    steps = [_step("a"), _step("b"), _step("c", fail=True)]
    policy = {"firstDelaySeconds": 10, "factor": 3, "maxDelaySeconds": 60, "maxAttempts": 3}
    started = async_durable_host.now()
    status = await async_durable_host.run("saga", {"steps": steps, "compensationRetry": policy})
    elapsed = async_durable_host.now() - started

    result = status["output"]
    assert result["status"] == "compensation_failed"
    b, a = result["compensations"]
    assert (b["step"], b["status"], b["attempts"]) == ("b", "failed", 3)
    assert "undo of b is down" in b["error"]
    assert (a["step"], a["status"], a["attempts"]) == ("a", "compensated", 2)
    assert journal == ["do:a", "do:b", "do:c", "undo:b", "undo:b", "undo:b", "undo:a", "undo:a"]
    # b waited 10 s then 30 s; a waited 10 s: the backoff ran on durable timers.
    assert elapsed >= timedelta(seconds=50)


async def test_a_caller_can_hand_over_completed_steps_for_compensation_only(
    async_durable_host: DurableTestHost,
) -> None:
    steps = [{**_step("a"), "completed": True}, {**_step("b"), "completed": True}]
    status = await async_durable_host.run(
        "saga_parent", {"steps": steps, "abortReason": "payment declined"}
    )

    result = status["output"]
    assert result["status"] == "compensated"
    assert result["error"] == "payment declined"
    assert journal == ["undo:b", "undo:a"]


async def test_entity_operations_can_be_steps_and_compensations(
    async_durable_host: DurableTestHost,
) -> None:
    reserve = {
        "name": "reserve",
        "action": "inventory_reservation",
        "key": "SKU-1",
        "input": {"reservationId": "r1", "quantity": 2},
    }
    restock = json.dumps(json.dumps({"quantity": 5}))
    await async_durable_host.engine.signal_entity("inventory", "SKU-1", "add", restock)
    await async_durable_host.idle()
    status = await async_durable_host.run("saga", {"steps": [reserve, _step("x", fail=True)]})
    _, state = await async_durable_host.engine.read_entity("inventory", "SKU-1")

    assert status["output"]["compensations"][0]["status"] == "compensated"
    assert '"available": 5' in (state or "") and '"reserved": 0' in (state or "")
