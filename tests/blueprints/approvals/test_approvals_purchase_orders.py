"""Purchase orders: approved automatically under the threshold, else by a person or cancelled."""

from __future__ import annotations

import json
from typing import Any

import pytest
from approvals_helpers import notifications

from blueprints.app_storage import table
from devhost.testing import DurableTestHost

# Run once with a connection string and once identity-based (a token, no account key).
pytestmark = [pytest.mark.usefixtures("app_storage"), pytest.mark.both_storage_paths]


async def _start(client: Any, body: dict[str, Any]) -> str:
    response = await client.post("/api/purchase-orders", json=body)
    assert response.status == 202, await response.text()
    return str((await response.json())["id"])


def _placed() -> dict[str, str]:
    return {row["RowKey"]: row["ApprovedBy"] for row in table("PurchaseOrders").list_entities()}


async def test_an_order_under_the_threshold_is_placed_automatically(
    async_durable_host: DurableTestHost,
) -> None:
    """999.99 < 1000 (the default): placed at once, nobody asked."""
    client = await async_durable_host.http()
    instance_id = await _start(client, {"amount": 999.99, "description": "chairs"})
    assert (await async_durable_host.wait(instance_id))["output"] == "Auto-approved"
    assert _placed() == {instance_id: "system"}
    assert await notifications(client, instanceId=instance_id) == []


@pytest.mark.durable_host(virtual_time="manual")
async def test_an_order_at_the_threshold_waits_for_approval(
    async_durable_host: DurableTestHost,
) -> None:
    """1000 needs a person: the approver is notified, approves through the events endpoint."""
    client = await async_durable_host.http()
    instance_id = await _start(
        client, {"amount": 1000, "approverEmail": "boss@example.com", "orderId": "po-1"}
    )
    await async_durable_host.wait_for_custom_status(
        instance_id, lambda c: c and c["stage"] == "awaiting_approval"
    )
    await async_durable_host.idle()
    assert instance_id == "po-1"
    [notice] = await notifications(client, recipient="boss@example.com")
    assert notice["link"] == "/api/purchase-orders/po-1/decision"

    response = await client.post(notice["link"], json={})
    assert response.status == 400  # the decision and the approver are required
    response = await client.post(
        notice["link"], json={"approved": True, "approver": "Boss@Example.com"}
    )
    assert response.status == 200
    decided = await response.json()
    assert (decided["outcome"], decided["decision"]["approver"]) == (
        "accepted",
        "boss@example.com",
    )
    assert (await async_durable_host.wait(instance_id))[
        "output"
    ] == "Approved by 'boss@example.com'"
    assert _placed() == {instance_id: "boss@example.com"}


async def test_an_unanswered_order_is_cancelled_after_the_timeout(
    async_durable_host: DurableTestHost,
) -> None:
    """No approval in 24 hours (virtual): 'Cancelled', nothing placed."""
    client = await async_durable_host.http()
    instance_id = await _start(client, {"amount": 5000, "approverEmail": "boss@example.com"})
    status = await async_durable_host.wait(instance_id)
    assert status["output"] == "Cancelled"
    assert status["customStatus"]["stage"] == "cancelled"
    assert _placed() == {}


async def test_threshold_and_timeout_come_from_the_app_settings(
    async_durable_host: DurableTestHost,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The settings are read by the starter and passed in the input; a body overrides them."""
    monkeypatch.setenv("PURCHASE_ORDER_APPROVAL_THRESHOLD", "100")
    monkeypatch.setenv("PURCHASE_ORDER_APPROVAL_TIMEOUT_HOURS", "2")
    monkeypatch.setenv("PURCHASE_ORDER_APPROVERS", "Buyer@example.com, cfo@example.com")
    client = await async_durable_host.http()
    waits = await _start(client, {"amount": 150})
    status = await async_durable_host.wait(waits)
    assert status["output"] == "Cancelled"
    # The engine keeps the input as the client sent it: a JSON text.
    sent = json.loads(status["input"])
    assert (sent["threshold"], sent["timeoutHours"]) == (100, 2)
    assert sent["approvers"] == ["buyer@example.com", "cfo@example.com"]

    overridden = await _start(client, {"amount": 150, "threshold": 200})
    assert (await async_durable_host.wait(overridden))["output"] == "Auto-approved"

    monkeypatch.setenv("PURCHASE_ORDER_APPROVAL_THRESHOLD", "lots")
    response = await client.post("/api/purchase-orders", json={"amount": 1})
    assert response.status == 500
    assert (await response.json())["error"]["code"] == "MisconfiguredSetting"


async def test_an_order_needing_approval_needs_an_approver(
    async_durable_host: DurableTestHost,
) -> None:
    """Without approverEmail or PURCHASE_ORDER_APPROVERS nobody could decide: 400."""
    client = await async_durable_host.http()
    response = await client.post("/api/purchase-orders", json={"amount": 5000})
    assert response.status == 400
    assert (await response.json())["error"]["details"][0]["field"] == "approverEmail"
    assert await _start(client, {"amount": 10}) != ""  # under the threshold: nobody needed


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_rejection_rejects_the_order_and_places_nothing(
    async_durable_host: DurableTestHost,
) -> None:
    """approved: false ends as 'Rejected by ...', not 'Approved by ...', and nothing is placed."""
    client = await async_durable_host.http()
    body = {"orderId": "po-r", "amount": 2000, "approverEmail": "boss@example.com"}
    instance_id = await _start(client, body)
    await async_durable_host.wait_for_custom_status(
        instance_id, lambda c: c and c["stage"] == "awaiting_approval"
    )
    response = await client.post(
        "/api/purchase-orders/po-r/decision",
        json={"approved": False, "approver": "boss@example.com", "comments": "over budget"},
    )
    assert response.status == 200
    status = await async_durable_host.wait(instance_id)
    assert status["output"] == "Rejected by 'boss@example.com'"
    assert status["customStatus"]["stage"] == "rejected"
    assert status["customStatus"]["decision"]["comments"] == "over budget"
    assert _placed() == {}


@pytest.mark.durable_host(virtual_time="manual")
async def test_the_event_endpoint_refuses_approval_received_and_names_the_route(
    async_durable_host: DurableTestHost,
) -> None:
    """approval_received goes through the decision route, which answers with its outcome."""
    client = await async_durable_host.http()
    body = {"orderId": "po-e", "amount": 2000, "approverEmail": "boss@example.com"}
    instance_id = await _start(client, body)
    await async_durable_host.wait_for_custom_status(
        instance_id, lambda c: c and c["stage"] == "awaiting_approval"
    )
    response = await client.post(
        f"/api/instances/{instance_id}/events/approval_received",
        json={"approver": "boss@example.com", "approved": False},
    )
    assert response.status == 403
    error = (await response.json())["error"]
    assert error["code"] == "EventHasOwnRoute"
    assert error["details"][0]["route"] == "POST /api/purchase-orders/po-e/decision"
    await async_durable_host.idle()
    status = await async_durable_host.status(instance_id)
    assert status is not None and status["customStatus"]["stage"] == "awaiting_approval"
    assert _placed() == {}


@pytest.mark.durable_host(virtual_time="manual")
async def test_only_the_designated_approver_decides(async_durable_host: DurableTestHost) -> None:
    """Someone else: 403 at the route, and refused by the orchestrator through the raw event."""
    client = await async_durable_host.http()
    body = {"orderId": "po-a", "amount": 2000, "approverEmail": "boss@example.com"}
    instance_id = await _start(client, body)
    await async_durable_host.wait_for_custom_status(
        instance_id, lambda c: c and c["stage"] == "awaiting_approval"
    )
    response = await client.post(
        "/api/purchase-orders/po-a/decision",
        json={"approved": True, "approver": "intern@example.com"},
    )
    assert response.status == 403
    await async_durable_host.raise_event(
        instance_id,
        "approval_received",
        {"approver": "intern@example.com", "requestId": "sneaky"},
    )
    await async_durable_host.idle()
    read = await client.get("/api/purchase-orders/po-a/decisions/sneaky")
    assert (await read.json())["code"] == "NotTheApprover"
    assert ((await async_durable_host.status(instance_id)) or {})["runtimeStatus"] == "Running"

    response = await client.post(
        "/api/purchase-orders/po-a/decision",
        json={"approved": True, "approver": "boss@example.com"},
    )
    assert response.status == 200
    assert (await async_durable_host.wait(instance_id))[
        "output"
    ] == "Approved by 'boss@example.com'"
    again = await client.post(
        "/api/purchase-orders/po-a/decision",
        json={"approved": False, "approver": "boss@example.com", "comments": "changed mind"},
    )
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "AlreadyDecided"
    assert _placed() == {instance_id: "boss@example.com"}


@pytest.mark.durable_host(virtual_time="manual")
async def test_the_order_id_is_the_instance_id_and_a_repost_answers_as_orders_do(
    async_durable_host: DurableTestHost,
) -> None:
    """Same body while running: 200 with its links; another body: 409; once done: 409."""
    client = await async_durable_host.http()
    body = {"orderId": "po-7", "amount": 2000, "approverEmail": "boss@example.com"}
    assert await _start(client, body) == "po-7"
    again = await client.post("/api/purchase-orders", json=body)
    assert again.status == 200
    assert (await again.json())["id"] == "po-7"
    other = await client.post("/api/purchase-orders", json={**body, "amount": 3000})
    assert other.status == 409
    assert (await other.json())["error"]["code"] == "OrderConflict"

    decided = await client.post(
        "/api/purchase-orders/po-7/decision",
        json={"approved": True, "approver": "boss@example.com"},
    )
    assert decided.status == 200
    await async_durable_host.wait("po-7")
    late = await client.post("/api/purchase-orders", json=body)
    assert late.status == 409
    assert (await late.json())["error"]["code"] == "OrderAlreadyProcessed"
    assert _placed() == {"po-7": "boss@example.com"}


async def test_a_decision_on_an_order_that_waits_for_none_is_refused(
    async_durable_host: DurableTestHost,
) -> None:
    """An auto-approved order takes no decision: 409 NotAwaitingApproval."""
    client = await async_durable_host.http()
    instance_id = await _start(client, {"orderId": "po-s", "amount": 5})
    await async_durable_host.wait(instance_id)
    response = await client.post(
        "/api/purchase-orders/po-s/decision",
        json={"approved": True, "approver": "boss@example.com"},
    )
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "NotAwaitingApproval"


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_key_reused_for_another_decision_answers_422(
    async_durable_host: DurableTestHost,
) -> None:
    """Same key and decision: the same answer again (the order decided once). Same key with
    other comments: 422 naming Idempotency-Key, not the first decision's outcome."""
    client = await async_durable_host.http()
    body = {"orderId": "po-k", "amount": 2000, "approverEmail": "boss@example.com"}
    instance_id = await _start(client, body)
    await async_durable_host.wait_for_custom_status(
        instance_id, lambda c: c and c["stage"] == "awaiting_approval"
    )
    uri = "/api/purchase-orders/po-k/decision"
    headers = {"Idempotency-Key": "k-1"}
    decision = {"approved": True, "approver": "boss@example.com", "comments": "ok"}
    first = await client.post(uri, json=decision, headers=headers)
    again = await client.post(uri, json=decision, headers=headers)
    assert (first.status, again.status) == (200, 200)
    assert await again.json() == await first.json()

    reused = await client.post(uri, json={**decision, "comments": "ok, but"}, headers=headers)
    assert reused.status == 422
    error = (await reused.json())["error"]
    assert error["code"] == "IdempotencyKeyReused"
    assert error["details"] == [
        {"field": "Idempotency-Key", "code": "key_reused", "message": "differs in comments"}
    ]
    assert (await async_durable_host.wait(instance_id))[
        "output"
    ] == "Approved by 'boss@example.com'"
