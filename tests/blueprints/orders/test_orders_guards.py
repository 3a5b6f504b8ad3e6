"""What an order takes and when, what the customer is told, and what is undone on any failure.

Requests go through the local host's HTTP front; the activities write to the test's Azurite.
"""

import asyncio
from datetime import UTC, datetime
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

from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("app_storage")


async def _customer_notices(client: Any, order_id: str) -> dict[str, dict[str, Any]]:
    response = await client.get(
        f"/api/notifications?recipient=ana@example.com&instanceId={order_id}"
    )
    return {n["category"]: n for n in (await response.json())["notifications"]}


async def test_approval_and_resolution_are_refused_unless_the_order_waits_for_them() -> None:
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        # A small order needs no approval; it sits in its payment backoff.
        await client.post("/api/orders", json=make_order("o-small", token="tok_transient_4"))
        await host.wait_for_custom_status(
            "o-small", lambda c: isinstance(c, dict) and c.get("paymentAttempts") == 1
        )
        approval = await client.post(
            "/api/orders/o-small/approval", json={"approved": True, "approver": "maria"}
        )
        assert approval.status == 409
        assert (await approval.json())["error"]["code"] == "NotAwaitingApproval"
        resolution = await client.post("/api/orders/o-small/resolution", json={"resolvedBy": "k"})
        assert resolution.status == 409
        assert (await resolution.json())["error"]["code"] == "NotAwaitingResolution"

        # A big order waiting for its approval takes no resolution, then takes the approval.
        await place(host, client, make_order("o-wait", BIG), "awaiting_approval")
        early = await client.post("/api/orders/o-wait/resolution", json={"resolvedBy": "k"})
        assert early.status == 409
        ok = await client.post(
            "/api/orders/o-wait/approval", json={"approved": True, "approver": "maria"}
        )
        assert ok.status == 200 and (await ok.json())["outcome"] == "accepted"
        assert (await host.wait("o-wait"))["output"]["status"] == "completed"


async def test_the_customer_is_not_told_of_a_refund_that_failed() -> None:
    async with order_host() as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        order = refund_fails("o-norefund")
        await place(host, client, order, "compensation_failed")
        failed = (await _customer_notices(client, "o-norefund"))["order_failed"]
        assert "refunded" not in failed["body"].replace("could not be refunded", "")
        assert "could not be refunded automatically" in failed["body"]

        resolution = {"resolvedBy": "ops-kim", "note": "refunded by bank transfer"}
        assert (
            await client.post("/api/orders/o-norefund/resolution", json=resolution)
        ).status == 200
        await host.wait("o-norefund")
        settled = (await _customer_notices(client, "o-norefund"))["order_refund_settled"]
        assert "refunded by bank transfer" in settled["body"]


async def test_the_customer_hears_what_happened_to_the_money() -> None:
    async with order_host() as host:
        await seed(host, SKU_A=10)
        client = await host.http()
        await client.post("/api/orders", json=make_order("o-declined", token="tok_decline"))
        await client.post("/api/orders", json=make_order("o-refunded", street="1 Undeliverable Rd"))
        await host.wait("o-declined")
        await host.wait("o-refunded")
        declined = (await _customer_notices(client, "o-declined"))["order_failed"]
        refunded = (await _customer_notices(client, "o-refunded"))["order_failed"]
    assert "Nothing was charged." in declined["body"]
    assert "The 20.00 USD charged is refunded." in refunded["body"]


async def test_an_activity_that_exhausts_its_retries_is_compensated() -> None:
    """The read model's write keeps failing once the order is paying: the order fails and
    its reservation is released, instead of the orchestration failing with the stock held."""

    def flaky_record(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["stage"] == "processing_payment":
            raise RuntimeError("table storage unavailable")
        return {"written": True}

    async with order_host(activity_overrides={"record_order": flaky_record}) as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        await client.post("/api/orders", json=make_order("o-fault", BIG))
        # Raised at once (kept by the runtime until the approval wait), before the virtual
        # clock can skip past the approval deadline.
        decision = {"approved": True, "approver": "maria"}
        await host.raise_event("o-fault", "ManagerApproval", decision)
        status = await host.wait("o-fault")
        stock = await stock_of(host, "SKU-A")
        notices = await _customer_notices(client, "o-fault")

    assert status["runtimeStatus"] == "Completed"
    result = status["output"]
    assert result["status"] == "failed"
    assert result["failureReason"] == "an internal error stopped the order before it shipped"
    assert compensated_steps(result) == ["reserve:SKU-A"]
    assert (stock["available"], stock["reserved"]) == (5, 0)
    assert "Nothing was charged." in notices["order_failed"]["body"]


async def test_an_unexpected_exception_after_the_charge_refunds_and_releases() -> None:
    """A provider answer the orchestrator cannot read raises in the orchestrator itself."""

    def broken_shipment(payload: dict[str, Any]) -> dict[str, Any]:
        return {"surprise": True}  # not a ShipmentResult: validating it raises

    async with order_host(activity_overrides={"create_shipment": broken_shipment}) as host:
        await seed(host, SKU_A=5)
        status = await host.run("process_order", make_order("o-broken"))
        stock = await stock_of(host, "SKU-A")

    result = status["output"]
    assert status["runtimeStatus"] == "Completed" and result["status"] == "failed"
    assert compensated_steps(result) == ["charge", "reserve:SKU-A"]
    assert ledger("o-broken")["refund"]["Status"] == "succeeded"
    assert (stock["available"], stock["reserved"]) == (5, 0)


async def test_a_stuck_order_loses_its_reservation_when_it_expires() -> None:
    """An order stuck waiting (here: for an approval nobody gives, on a clock that never
    moves) holds the stock only until its reservation expires; then another order can buy it,
    and the stuck one, approved late, fails without charging."""
    hold = 1.5 / 3600  # 1.5 s beyond the approval wait
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=2)
        client = await host.http()
        stuck = make_order("o-stuck", BIG, reservationHoldHours=hold, approvalTimeoutHours=hold)
        await place(host, client, stuck, "awaiting_approval")
        held = await stock_of(host, "SKU-A")
        assert (held["available"], held["reserved"]) == (0, 2)
        # The limit is the order's (virtual) clock + 3 s; wait on the wall clock until it passed.
        limit = datetime.fromisoformat(held["expires"]["o-stuck:SKU-A"])
        await asyncio.sleep(max(0.0, (limit - datetime.now(UTC)).total_seconds()) + 0.3)
        view = await (await client.get("/api/inventory/SKU-A")).json()
        assert (view["available"], view["reserved"], view["reservations"]) == (2, 0, {})
        bought = await host.run("process_order", make_order("o-buyer", [("SKU-A", 2, 10.0)]))
        assert bought["output"]["status"] == "completed"

        decision = {"approved": True, "approver": "maria"}
        assert (await client.post("/api/orders/o-stuck/approval", json=decision)).status == 200
        status = await host.wait("o-stuck")
        notices = await _customer_notices(client, "o-stuck")
        stock = await stock_of(host, "SKU-A")

    result = status["output"]
    assert result["status"] == "failed"
    assert "lapsed and the stock is gone" in result["failureReason"]
    assert "charge" not in ledger("o-stuck")
    assert "Nothing was charged." in notices["order_failed"]["body"]
    assert (stock["available"], stock["reserved"]) == (0, 0)


async def test_a_repost_with_a_different_body_is_a_conflict() -> None:
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        assert (await client.post("/api/orders", json=make_order("o-twice", BIG))).status == 202
        await host.wait_for_custom_status("o-twice", at_stage("awaiting_approval"))
        same = await client.post("/api/orders", json=make_order("o-twice", BIG))
        assert same.status == 200
        other = await client.post("/api/orders", json=make_order("o-twice", [("SKU-A", 3, 600.0)]))
        assert other.status == 409
        assert (await other.json())["error"]["code"] == "OrderConflict"


async def test_a_cancel_raised_while_the_order_starts_is_not_lost() -> None:
    """Raised during the first step of a small order (no approval, no payment retry): the
    order is cancelled; before, the cancel was never looked at and the order completed."""
    release = asyncio.Event()
    calls = 0

    async def slow_first_record(payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await release.wait()
        return {"written": True}

    async with order_host(activity_overrides={"record_order": slow_first_record}) as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        await place(host, client, make_order("o-early"), "validating")
        response = await client.post("/api/orders/o-early/cancel", json={"reason": "oops"})
        assert response.status == 202

        async def cancel_in_history() -> bool:
            shown = await host.status("o-early", history=True)
            events = (shown or {}).get("historyEvents") or []
            return any(event["EventType"] == "EventRaised" for event in events)

        await eventually(cancel_in_history, "the cancel to reach the order's history")
        release.set()
        status = await host.wait("o-early")
        stock = await stock_of(host, "SKU-A")

    assert (status["output"]["status"], status["output"]["failureReason"]) == ("cancelled", "oops")
    assert stock["available"] == 5 and "charge" not in ledger("o-early")
