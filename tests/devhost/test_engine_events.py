"""External events: encoding, buffering and name matching."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from devhost.engine.api import InstanceNotFound
from devhost.engine.history import EventType
from devhost.testing import DurableTestHost
from tests.devhost.apps.waiting import INDEX


@pytest.fixture
async def host() -> AsyncIterator[DurableTestHost]:
    async with DurableTestHost(index=INDEX, virtual_time="manual") as test_host:
        yield test_host


async def test_event_raised_by_the_python_client_arrives_as_a_json_string(
    host: DurableTestHost,
) -> None:
    instance_id = await host.start("wait_for_approve")
    await host.idle()
    await host.raise_event(instance_id, "Approve", {"ok": True}, as_client=True)

    status = await host.wait(instance_id)

    # The Python client double-encodes event data (azure-functions-durable-python#295).
    assert status["output"] == '{"ok": true}'


async def test_event_raised_over_raw_http_arrives_as_a_dict(host: DurableTestHost) -> None:
    instance_id = await host.start("wait_for_approve")
    await host.idle()
    await host.raise_event(instance_id, "Approve", {"ok": True}, as_client=False)

    status = await host.wait(instance_id)

    assert status["output"] == {"ok": True}


async def test_event_raised_before_the_orchestrator_waits_is_buffered(
    host: DurableTestHost,
) -> None:
    instance_id = await host.start("timer_then_event")
    await host.idle()
    await host.raise_event(instance_id, "Go", {"n": 1}, as_client=False)
    await host.idle()
    status = await host.status(instance_id)
    assert status is not None and status["runtimeStatus"] == "Running"

    host.advance(timedelta(hours=1))
    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"n": 1}


async def test_sdk_matches_event_names_case_sensitively(host: DurableTestHost) -> None:
    instance_id = await host.start("wait_for_approve")
    await host.idle()

    await host.raise_event(instance_id, "APPROVE", "wrong case", as_client=False)
    await host.idle()
    status = await host.status(instance_id)
    assert status is not None and status["runtimeStatus"] == "Running"

    await host.raise_event(instance_id, "Approve", "right case", as_client=False)
    status = await host.wait(instance_id)

    assert status["output"] == "right case"
    raised = [
        e["Name"]
        for e in host.engine.instances[instance_id].history
        if e["EventType"] == EventType.EventRaised
    ]
    assert raised == ["APPROVE", "Approve"]


async def test_event_without_data_arrives_as_none(host: DurableTestHost) -> None:
    instance_id = await host.start("wait_for_approve")
    await host.idle()
    await host.raise_event(instance_id, "Approve")

    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] is None


async def test_event_for_an_unknown_instance_is_refused(host: DurableTestHost) -> None:
    with pytest.raises(InstanceNotFound):
        await host.raise_event("nobody-here", "Approve", "x")


async def test_task_any_in_a_loop_gives_each_event_to_the_newest_wait(
    host: DurableTestHost,
) -> None:
    # Earlier rounds leave abandoned waits behind; the extension resolves the newest wait of a
    # name (a stack), so each event reaches the round that is waiting now.
    instance_id = await host.start("either_event_in_a_loop")
    for name, value in (("A", 1), ("B", 2), ("B", 3), ("A", 4)):
        await host.idle()
        await host.raise_event(instance_id, name, value, as_client=False)

    status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == [1, 2, 3, 4]
