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


async def test_an_order_under_the_threshold_is_placed_automatically() -> None:
    """999.99 < 1000 (the default): placed at once, nobody asked."""
    async with DurableTestHost(".") as host:
        client = await host.http()
        instance_id = await _start(client, {"amount": 999.99, "description": "chairs"})
        assert (await host.wait(instance_id))["output"] == "Auto-approved"
        assert _placed() == {instance_id: "system"}
        assert await notifications(client, instanceId=instance_id) == []


async def test_an_order_at_the_threshold_waits_for_approval() -> None:
    """1000 needs a person: the approver is notified, approves through the events endpoint."""
    async with DurableTestHost(".", virtual_time="manual") as host:
        client = await host.http()
        instance_id = await _start(
            client, {"amount": 1000, "approverEmail": "boss@example.com", "orderId": "po-1"}
        )
        await host.wait_for_custom_status(
            instance_id, lambda c: c and c["stage"] == "awaiting_approval"
        )
        await host.idle()
        [notice] = await notifications(client, recipient="boss@example.com")
        assert notice["link"] == f"/api/instances/{instance_id}/events/approval_received"

        response = await client.post(notice["link"], json={})
        assert response.status == 400  # the approver is required
        response = await client.post(notice["link"], json={"approver": "Boss"})
        assert response.status == 202
        assert (await host.wait(instance_id))["output"] == "Approved by 'Boss'"
        assert _placed() == {instance_id: "Boss"}


async def test_an_unanswered_order_is_cancelled_after_the_timeout() -> None:
    """No approval in 24 hours (virtual): 'Cancelled', nothing placed."""
    async with DurableTestHost(".") as host:
        client = await host.http()
        instance_id = await _start(client, {"amount": 5000})
        status = await host.wait(instance_id)
        assert status["output"] == "Cancelled"
        assert status["customStatus"]["stage"] == "cancelled"
        assert _placed() == {}


async def test_threshold_and_timeout_come_from_the_app_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The settings are read by the starter and passed in the input; a body overrides them."""
    monkeypatch.setenv("PURCHASE_ORDER_APPROVAL_THRESHOLD", "100")
    monkeypatch.setenv("PURCHASE_ORDER_APPROVAL_TIMEOUT_HOURS", "2")
    async with DurableTestHost(".") as host:
        client = await host.http()
        waits = await _start(client, {"amount": 150})
        status = await host.wait(waits)
        assert status["output"] == "Cancelled"
        # The engine keeps the input as the client sent it: a JSON text.
        sent = json.loads(status["input"])
        assert (sent["threshold"], sent["timeoutHours"]) == (100, 2)

        overridden = await _start(client, {"amount": 150, "threshold": 200})
        assert (await host.wait(overridden))["output"] == "Auto-approved"

        monkeypatch.setenv("PURCHASE_ORDER_APPROVAL_THRESHOLD", "lots")
        response = await client.post("/api/purchase-orders", json={"amount": 1})
        assert response.status == 500
        assert (await response.json())["error"]["code"] == "MisconfiguredSetting"
