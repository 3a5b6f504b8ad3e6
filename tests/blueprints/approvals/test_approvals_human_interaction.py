"""The human-interaction recipe: ``ApprovalEvent`` raced against a timer, through its routes."""

from __future__ import annotations

import asyncio

import pytest

from devhost.testing import DurableTestHost

pytestmark = pytest.mark.usefixtures("app_storage")


@pytest.fixture(autouse=True)
def _patient_route(monkeypatch: pytest.MonkeyPatch) -> None:
    # The route answers as soon as the instance took the approval; the limit only matters
    # when both cores are busy, where 5 s could turn a 200 into a 202 "pending".
    monkeypatch.setenv("HUMAN_APPROVAL_WAIT_SECONDS", "60")


async def _start(client: object, body: object = None) -> str:
    response = await client.post("/api/start-approval", json=body)  # type: ignore[attr-defined]
    assert response.status == 202, await response.text()
    return str((await response.json())["id"])


@pytest.mark.durable_host(virtual_time="manual")
async def test_an_approval_before_the_timeout_completes_at_once(
    async_durable_host: DurableTestHost,
) -> None:
    """Approved, and the losing timer is cancelled: no time passes, yet the instance completes."""
    host = async_durable_host
    client = await host.http()
    instance_id = await _start(client)
    await host.wait_for_custom_status(
        instance_id, lambda c: c and c["stage"] == "awaiting_approval"
    )
    response = await client.post(f"/api/approve/{instance_id}", json={"approver": "ana"})
    assert response.status == 200
    assert (await response.json())["outcome"] == "accepted"
    status = await host.wait(instance_id)
    assert status["output"] == "Approved"


async def test_without_an_approval_it_times_out(async_durable_host: DurableTestHost) -> None:
    """No event: the timer (300 s by default, or the body's) wins: 'Timed out'."""
    host = async_durable_host
    client = await host.http()
    instance_id = await _start(client, {"timeoutSeconds": 5})
    status = await host.wait(instance_id)
    assert status["output"] == "Timed out"
    created = await host.status(instance_id, history=True)
    assert created is not None
    [timer] = [e for e in created["historyEvents"] if e["EventType"] == "TimerCreated"]
    assert timer["FireAt"] > created["createdTime"]


async def test_the_routes_refuse_unknown_finished_and_invalid(
    async_durable_host: DurableTestHost,
) -> None:
    """404 unknown, 409 timed out (with why), 400 for a bad timeout; the generic starter too."""
    host = async_durable_host
    client = await host.http()
    response = await client.post("/api/start-approval", json={"timeoutSeconds": 0})
    assert response.status == 400
    assert (await client.post("/api/approve/nobody")).status == 404

    response = await client.post("/api/orchestrators/human_approval", json={})
    assert response.status == 202
    instance_id = (await response.json())["id"]
    assert (await host.wait(instance_id))["output"] == "Timed out"
    response = await client.post(f"/api/approve/{instance_id}")
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "NotAwaitingApproval"
    assert "timed out" in error["message"]


@pytest.mark.durable_host(virtual_time="manual")
async def test_the_generic_event_endpoint_refuses_approval_event_and_names_the_route(
    async_durable_host: DurableTestHost,
) -> None:
    """``ApprovalEvent`` (any spelling) goes through ``POST /api/approve/{id}``, not around it."""
    host = async_durable_host
    client = await host.http()
    instance_id = await _start(client, {"timeoutSeconds": 60})
    await host.wait_for_custom_status(
        instance_id, lambda c: c and c["stage"] == "awaiting_approval"
    )
    response = await client.post(f"/api/instances/{instance_id}/events/approvalevent", json={})
    assert response.status == 403
    error = (await response.json())["error"]
    assert error["code"] == "EventHasOwnRoute"
    assert error["details"][0]["route"] == f"POST /api/approve/{instance_id}"
    await host.idle()
    status = await host.status(instance_id)
    assert status is not None and status["runtimeStatus"] == "Running"


@pytest.mark.durable_host(virtual_time="manual")
async def test_two_approvals_at_once_one_is_taken_the_other_refused(
    async_durable_host: DurableTestHost,
) -> None:
    """Both see the instance waiting; one is taken (200), the other refused (409) naming who."""
    host = async_durable_host
    client = await host.http()
    instance_id = await _start(client, {"timeoutSeconds": 600})
    await host.wait_for_custom_status(
        instance_id, lambda c: c and c["stage"] == "awaiting_approval"
    )

    async def approve(approver: str) -> tuple[int, dict]:
        response = await client.post(
            f"/api/approve/{instance_id}",
            json={"approver": approver},
            headers={"Idempotency-Key": f"key-{approver}"},
        )
        return response.status, await response.json()

    (first, a), (second, b) = await asyncio.gather(approve("ana"), approve("bo"))
    assert sorted([first, second]) == [200, 409], (a, b)
    taken, refused = (a, b) if first == 200 else (b, a)
    assert taken["outcome"] == "accepted"
    assert refused["error"]["code"] == "AlreadyDecided"
    assert f"approved by {taken['approver']}" in refused["error"]["message"]
    assert (await host.wait(instance_id))["customStatus"]["approver"] == taken["approver"]

    # Read back later, and retried with the same key, each answers as it did.
    loser = "bo" if taken["approver"] == "ana" else "ana"
    back = await client.get(f"/api/approve/{instance_id}/key-{loser}")
    assert (back.status, (await back.json())["code"]) == (200, "AlreadyDecided")
    assert (await approve(taken["approver"]))[0] == 200


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_key_reused_by_another_approver_answers_422(
    async_durable_host: DurableTestHost,
) -> None:
    """The approval taken under a key answers a retry again; the same key naming another
    approver is another request: 422 naming Idempotency-Key."""
    host = async_durable_host
    client = await host.http()
    instance_id = await _start(client, {"timeoutSeconds": 600})
    await host.wait_for_custom_status(
        instance_id, lambda c: c and c["stage"] == "awaiting_approval"
    )
    uri = f"/api/approve/{instance_id}"
    headers = {"Idempotency-Key": "k-ana"}
    first = await client.post(uri, json={"approver": "ana"}, headers=headers)
    again = await client.post(uri, json={"approver": "ana"}, headers=headers)
    assert (first.status, again.status) == (200, 200)
    assert await again.json() == await first.json()

    reused = await client.post(uri, json={"approver": "bo"}, headers=headers)
    assert reused.status == 422
    error = (await reused.json())["error"]
    assert (error["code"], error["details"][0]["field"]) == (
        "IdempotencyKeyReused",
        "Idempotency-Key",
    )
    assert error["details"][0]["message"] == "differs in approver"
    assert (await host.wait(instance_id))["customStatus"]["approver"] == "ana"
