from datetime import datetime, timedelta

import pytest


def test_hello_sequence(durable_host):
    status = durable_host.run("hello_orchestrator")

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_nobody_approves_within_30_days(durable_host):
    instance_id = durable_host.start("approval_orchestrator")
    status = durable_host.wait(instance_id)

    assert status["output"] == "Expired"
    created = datetime.fromisoformat(status["createdTime"])
    finished = datetime.fromisoformat(status["lastUpdatedTime"])
    assert finished - created >= timedelta(days=30)


@pytest.mark.durable_host(activity_overrides={"hello": lambda name: "a stand-in"})
def test_an_activity_replaced_by_name(durable_host):
    status = durable_host.run("hello_orchestrator")

    assert status["output"] == ["a stand-in"] * 3


@pytest.mark.asyncio
@pytest.mark.durable_host(virtual_time="manual")  # the deadline must not pass before the event
async def test_an_approval_before_the_deadline(async_durable_host):
    instance_id = await async_durable_host.start("approval_orchestrator")
    await async_durable_host.raise_event(instance_id, "Approval", True)
    await async_durable_host.idle()
    # The SDK keeps an orchestration whose canceled timer is longer than the storage's
    # longest timer running until that timer's time (azure-functions-durable-python#573).
    async_durable_host.advance(timedelta(days=31))
    status = await async_durable_host.wait(instance_id)

    assert status["output"] == "Approved by Hello approver!"
