"""The order routes in-process: placing, duplicates, approvals, cancellation and manual resolution.

Requests go through the local host's HTTP front and the real durable client binding.
"""

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from orders_harness import (
    BIG,
    at_stage,
    compensated_steps,
    ledger,
    make_order,
    order_host,
    place,
    refund_fails,
    seed,
    stock_of,
)

# Run once with a connection string and once identity-based (a token, no account key).
pytestmark = [pytest.mark.usefixtures("app_storage"), pytest.mark.both_storage_paths]


async def test_stock_is_seeded_and_read_over_http() -> None:
    async with order_host() as host:
        client = await host.http()
        response = await client.post("/api/inventory/SKU-Z", json={"quantity": 7})
        assert response.status == 202
        await host.idle()
        body = await (await client.get("/api/inventory/SKU-Z")).json()
        assert body == {
            "sku": "SKU-Z",
            "available": 7,
            "reserved": 0,
            "reservations": {},
            "expiresAt": {},
        }
        assert (await client.get("/api/inventory/SKU-NONE")).status == 404
        bad = await client.post("/api/inventory/SKU-Z", json={"quantity": 0})
        assert bad.status == 400 and (await bad.json())["error"]["code"] == "ValidationFailed"


async def test_invalid_order_is_refused_before_anything_starts() -> None:
    async with order_host() as host:
        client = await host.http()
        response = await client.post("/api/orders", json=make_order("o-bad", [("SKU-A", 0, 1.0)]))
        body = await response.json()
        assert response.status == 400
        assert body["error"]["details"][0]["field"] == "items[0].quantity"
        assert await host.status("o-bad") is None
        assert (await client.get("/api/orders/o-bad")).status == 404


async def test_manager_approval_given_completes_and_same_order_twice_starts_one_saga() -> None:
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        first = await client.post("/api/orders", json=make_order("o-big", BIG))
        assert first.status == 202
        await host.wait_for_custom_status("o-big", at_stage("awaiting_approval"))

        again = await client.post("/api/orders", json=make_order("o-big", BIG))
        assert again.status == 200
        links = await again.json()
        assert links["existing"] is True
        assert links["statusQueryGetUri"] == (await first.json())["statusQueryGetUri"]
        listed = await (await client.get("/api/orders?status=awaiting_approval")).json()
        assert [o["orderId"] for o in listed["orders"]] == ["o-big"]

        decision = {"approved": True, "approver": "maria"}
        assert (await client.post("/api/orders/o-big/approval", json=decision)).status == 200
        status = await host.wait("o-big")
        assert status["output"]["status"] == "completed"
        assert ledger("o-big")["charge"]["AmountCents"] == 120000

        done = await client.post("/api/orders", json=make_order("o-big", BIG))
        assert done.status == 409
        assert (await done.json())["error"]["code"] == "OrderAlreadyProcessed"
        view = await (await client.get("/api/orders/o-big")).json()
        assert view["runtimeStatus"] == "Completed" and view["result"]["status"] == "completed"
        cancel = await client.post("/api/orders/o-big/cancel")
        assert cancel.status == 409


async def test_manager_denial_fails_and_releases() -> None:
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        await host.start("process_order", make_order("o-deny", BIG), "o-deny")
        await host.wait_for_custom_status("o-deny", at_stage("awaiting_approval"))
        await host.raise_event("o-deny", "ManagerApproval", {"approved": False, "approver": "li"})
        status = await host.wait("o-deny")
        stock = await stock_of(host, "SKU-A")

    assert status["output"]["status"] == "failed"
    assert status["output"]["failureReason"] == "rejected by li"
    assert compensated_steps(status["output"]) == ["reserve:SKU-A"]
    assert stock["available"] == 5 and "o-deny" not in ledger("o-deny")


async def test_no_decision_in_time_cancels_after_the_configured_timeout() -> None:
    async with order_host() as host:
        await seed(host, SKU_A=5)
        started = host.now()
        order = make_order("o-late", BIG, approvalTimeoutHours=48)
        status = await host.run("process_order", order)
        waited = host.now() - started
        stock = await stock_of(host, "SKU-A")

    assert status["output"]["status"] == "cancelled"
    assert status["output"]["failureReason"] == "no manager decision within 48 h"
    assert waited >= timedelta(hours=48)
    assert stock["available"] == 5


async def test_cancel_while_waiting_for_approval_over_http() -> None:
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        await place(host, client, make_order("o-cxl", BIG), "awaiting_approval")
        response = await client.post("/api/orders/o-cxl/cancel", json={"reason": "changed mind"})
        assert response.status == 202
        status = await host.wait("o-cxl")
        stock = await stock_of(host, "SKU-A")

    result = status["output"]
    assert (result["status"], result["failureReason"]) == ("cancelled", "changed mind")
    assert compensated_steps(result) == ["reserve:SKU-A"]
    assert stock["available"] == 5 and stock["reserved"] == 0


async def test_cancel_during_payment_backoff_stops_retrying() -> None:
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        order = make_order("o-wait", token="tok_transient_4")
        await host.start("process_order", order, "o-wait")
        await host.wait_for_custom_status(
            "o-wait", lambda c: isinstance(c, dict) and c.get("paymentAttempts") == 1
        )
        await host.idle()
        await host.raise_event("o-wait", "CancelOrder", {"reason": "too slow"})
        status = await host.wait("o-wait")

    result = status["output"]
    assert (result["status"], result["failureReason"]) == ("cancelled", "too slow")
    assert compensated_steps(result) == ["reserve:SKU-A"]
    assert ledger("o-wait")["charge"]["Attempts"] == 1


async def test_cancel_after_shipment_answers_409() -> None:
    release = asyncio.Event()

    async def slow_tracking(payload: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {"trackingNumber": payload["trackingNumber"], "status": "in_transit"}

    async with order_host(activity_overrides={"register_delivery_tracking": slow_tracking}) as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        await place(host, client, make_order("o-gone"), "finalizing")
        response = await client.post("/api/orders/o-gone/cancel")
        assert response.status == 409
        assert (await response.json())["error"]["code"] == "OrderAlreadyShipped"
        release.set()
        status = await host.wait("o-gone")
    assert status["output"]["status"] == "completed"


async def test_refund_failure_needs_attention_until_manually_resolved() -> None:
    async with order_host() as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        order = refund_fails("o-stuck")
        await place(host, client, order, "compensation_failed")
        stock = await stock_of(host, "SKU-A")
        listed = await (await client.get("/api/orders?status=compensation_failed")).json()
        assert [(o["orderId"], o["needsAttention"]) for o in listed["orders"]] == [
            ("o-stuck", True)
        ]
        alert = await client.get("/api/notifications?recipient=order-operations")
        assert [n["category"] for n in (await alert.json())["notifications"]] == [
            "order_needs_attention"
        ]

        resolution = {"resolvedBy": "ops-kim", "note": "refunded by bank transfer"}
        assert (await client.post("/api/orders/o-stuck/resolution", json=resolution)).status == 200
        status = await host.wait("o-stuck")
        after = await (await client.get("/api/orders?status=compensation_failed")).json()

    # The failed refund did not stop the release that came after it.
    assert (stock["available"], stock["reserved"]) == (5, 0)
    result = status["output"]
    assert result["status"] == "failed"
    refund, release = result["compensations"]
    assert (refund["step"], refund["status"], refund["attempts"]) == ("charge", "resolved", 3)
    assert (release["step"], release["status"]) == ("reserve:SKU-A", "compensated")
    assert result["manualResolution"]["resolvedBy"] == "ops-kim"
    assert after["orders"] == []
    assert ledger("o-stuck")["refund"]["Status"] == "failed"
