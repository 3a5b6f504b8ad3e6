"""The human-interaction recipe: ``ApprovalEvent`` raced against a timer, through its routes."""

from __future__ import annotations

import pytest

from devhost.testing import DurableTestHost

pytestmark = pytest.mark.usefixtures("app_storage")


async def _start(client: object, body: object = None) -> str:
    response = await client.post("/api/start-approval", json=body)  # type: ignore[attr-defined]
    assert response.status == 202, await response.text()
    return str((await response.json())["id"])


@pytest.mark.durable_host(virtual_time="manual")
async def test_an_approval_before_the_timeout_completes_at_once(
    async_durable_host: DurableTestHost,
) -> None:
    """Approved, and the losing timer is cancelled: no time passes, yet the instance completes."""
    client = await async_durable_host.http()
    instance_id = await _start(client)
    await async_durable_host.wait_for_custom_status(
        instance_id, lambda c: c and c["stage"] == "awaiting_approval"
    )
    response = await client.post(f"/api/approve/{instance_id}", json={"approver": "ana"})
    assert response.status == 202
    status = await async_durable_host.wait(instance_id)
    assert status["output"] == "Approved"


async def test_without_an_approval_it_times_out(async_durable_host: DurableTestHost) -> None:
    """No event: the timer (300 s by default, or the body's) wins: 'Timed out'."""
    client = await async_durable_host.http()
    instance_id = await _start(client, {"timeoutSeconds": 5})
    status = await async_durable_host.wait(instance_id)
    assert status["output"] == "Timed out"
    created = await async_durable_host.status(instance_id, history=True)
    assert created is not None
    [timer] = [e for e in created["historyEvents"] if e["EventType"] == "TimerCreated"]
    assert timer["FireAt"] > created["createdTime"]


async def test_the_routes_refuse_unknown_finished_and_invalid(
    async_durable_host: DurableTestHost,
) -> None:
    """404 unknown, 410 finished, 400 for a bad timeout; the generic starter works too."""
    client = await async_durable_host.http()
    response = await client.post("/api/start-approval", json={"timeoutSeconds": 0})
    assert response.status == 400
    assert (await client.post("/api/approve/nobody")).status == 404

    response = await client.post("/api/orchestrators/human_approval", json={})
    assert response.status == 202
    instance_id = (await response.json())["id"]
    assert (await async_durable_host.wait(instance_id))["output"] == "Timed out"
    response = await client.post(f"/api/approve/{instance_id}")
    assert response.status == 410


@pytest.mark.durable_host(virtual_time="manual")
async def test_the_generic_event_endpoint_raises_approval_event(
    async_durable_host: DurableTestHost,
) -> None:
    """``POST /api/instances/{id}/events/approvalevent`` is matched to ``ApprovalEvent``."""
    client = await async_durable_host.http()
    instance_id = await _start(client, {"timeoutSeconds": 60})
    response = await client.post(f"/api/instances/{instance_id}/events/approvalevent", json={})
    assert response.status == 202
    assert (await async_durable_host.wait(instance_id))["output"] == "Approved"
