"""Approvals and resolutions of orders end in an outcome the caller reads back, never dropped.

Requests go through the local host's HTTP front; the activities write to the test's Azurite.
"""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from orders_harness import BIG, ledger, make_order, order_host, place, refund_fails, seed

from blueprints.http_errors import ApiError
from blueprints.orders.decisions import refuse_reused_key
from devhost.testing import DurableTestHost
from models.orders import ManagerApprovalEvent, OrderDecisionOutcome

pytestmark = pytest.mark.usefixtures("app_storage")


@pytest.fixture(autouse=True)
def _patient_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    # A route answers as soon as the order took the request; the limit only matters when both
    # cores are busy, where 5 s could turn a 200 into a 202 "pending".
    monkeypatch.setenv("ORDERS_DECISION_WAIT_SECONDS", "60")


async def _post(client: Any, url: str, body: dict[str, Any], key: str) -> tuple[int, Any]:
    response = await client.post(url, json=body, headers={"Idempotency-Key": key})
    return response.status, await response.json()


async def test_two_approvals_at_once_one_is_taken_the_other_refused_with_why() -> None:
    """Both see the order waiting; it takes one (200), the other is refused (409) naming it."""
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        await place(host, client, make_order("o-race", BIG), "awaiting_approval")

        url = "/api/orders/o-race/approval"
        (first, a), (second, b) = await asyncio.gather(
            _post(client, url, {"approved": True, "approver": "maria"}, "req-maria"),
            _post(client, url, {"approved": False, "approver": "li", "comment": "no"}, "req-li"),
        )
        assert sorted([first, second]) == [200, 409], (a, b)
        taken, refused = (a, b) if first == 200 else (b, a)
        assert taken["outcome"] == "accepted"
        assert refused["error"]["code"] == "AlreadyDecided"
        by = taken["decision"]["by"]
        assert f"by {by}" in refused["error"]["message"]
        [detail] = refused["error"]["details"]
        loser = "req-li" if by == "maria" else "req-maria"
        assert detail["requestId"] == loser

        status = await host.wait("o-race")
        # Both outcomes read back, after the order ended, as they were answered.
        taken_key = "req-maria" if by == "maria" else "req-li"
        back = await (await client.get(f"/api/orders/o-race/approvals/{taken_key}")).json()
        assert (back["outcome"], back["decision"]["by"]) == ("accepted", by)
        lost = await (await client.get(f"/api/orders/o-race/approvals/{loser}")).json()
        assert (lost["outcome"], lost["code"]) == ("refused", "AlreadyDecided")
        # A retry of the request that was taken answers the same, though the order ended.
        retries = {"maria": {"approved": True, "approver": "maria"}}
        retry = retries.get(by, {"approved": False, "approver": "li", "comment": "no"})
        again, body = await _post(client, url, retry, taken_key)
        assert (again, body["outcome"]) == (200, "accepted")

    expected = "completed" if by == "maria" else "failed"
    assert status["output"]["status"] == expected
    assert ("charge" in ledger("o-race")) == (by == "maria")


async def test_an_approval_the_order_no_longer_waits_for_is_refused_not_dropped() -> None:
    """A cancel that wins the race: the approval posted with it answers 409 with the stage."""
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        await place(host, client, make_order("o-gone", BIG), "awaiting_approval")
        # The cancel is taken first: the approval raised behind it is never consumed.
        await host.raise_event("o-gone", "CancelOrder", {"reason": "changed mind"})
        code, body = await _post(
            client, "/api/orders/o-gone/approval", {"approved": True, "approver": "maria"}, "k1"
        )
        await host.wait("o-gone")
        back = await (await client.get("/api/orders/o-gone/approvals/k1")).json()

    assert code == 409, body
    assert body["error"]["code"] in ("NotAwaitingApproval", "OrderAlreadyProcessed")
    assert back["outcome"] == "refused" and back["code"] == "NotAwaitingApproval"


async def test_two_resolutions_at_once_one_is_taken() -> None:
    """A failed compensation is settled once; the second operator hears who settled it."""
    async with order_host() as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        order = refund_fails("o-two")
        await place(host, client, order, "compensation_failed")

        url = "/api/orders/o-two/resolution"
        results = await asyncio.gather(
            _post(client, url, {"resolvedBy": "ops-kim", "note": "bank"}, "r-kim"),
            _post(client, url, {"resolvedBy": "ops-lee", "note": "cash"}, "r-lee"),
        )
        status = await host.wait("o-two")

    codes = sorted(code for code, _ in results)
    assert codes == [200, 409], results
    [(_, taken)] = [r for r in results if r[0] == 200]
    [(_, refused)] = [r for r in results if r[0] == 409]
    assert refused["error"]["code"] == "AlreadyDecided"
    assert f"resolved by {taken['decision']['by']}" in refused["error"]["message"]
    assert status["output"]["manualResolution"]["resolvedBy"] == taken["decision"]["by"]


async def test_the_generic_event_endpoint_refuses_the_order_events_and_names_their_routes() -> None:
    """An approval raised around its route would be buffered by an order that needs none."""
    # The whole app: the generic events endpoint is not one of the order blueprints.
    async with DurableTestHost(".", virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        # A small order needs no approval; it sits in its payment backoff.
        await client.post("/api/orders", json=make_order("o-side", token="tok_transient_4"))
        await host.wait_for_custom_status(
            "o-side", lambda c: isinstance(c, dict) and c.get("paymentAttempts") == 1
        )
        for event, body, route in (
            ("managerapproval", {"approved": True, "approver": "maria"}, "approval"),
            ("ManualResolution", {"resolvedBy": "kim"}, "resolution"),
            ("CancelOrder", {}, "cancel"),
        ):
            response = await client.post(f"/api/instances/o-side/events/{event}", json=body)
            assert response.status == 403, event
            error = (await response.json())["error"]
            assert error["code"] == "EventHasOwnRoute"
            assert error["details"][0]["route"] == f"POST /api/orders/o-side/{route}"
        await host.idle()
        status = await host.status("o-side")
    assert status is not None and status["runtimeStatus"] == "Running"


def _reused(answer: tuple[int, Any]) -> str:
    """The fields a 422 for a reused Idempotency-Key names (asserting its shape)."""
    status, body = answer
    assert status == 422, answer
    error = body["error"]
    assert error["code"] == "IdempotencyKeyReused"
    [detail] = error["details"]
    assert (detail["field"], detail["code"]) == ("Idempotency-Key", "key_reused")
    message: str = detail["message"]
    return message


async def test_a_key_reused_for_another_decision_is_refused_not_answered_with_the_first() -> None:
    """Same key, same decision: the same answer again. Same key, another verdict or another
    approver: 422 naming Idempotency-Key, and the order keeps the decision it took."""
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        await place(host, client, make_order("o-key", BIG), "awaiting_approval")

        url = "/api/orders/o-key/approval"
        approve = {"approved": True, "approver": "maria"}
        first = await _post(client, url, approve, "k-1")
        again = await _post(client, url, approve, "k-1")
        assert first[0] == 200 and again == first
        rejected = await _post(client, url, {**approve, "approved": False, "comment": "no"}, "k-1")
        assert _reused(rejected) == "differs in approved, comment"
        assert _reused(await _post(client, url, {**approve, "approver": "li"}, "k-1")) == (
            "differs in approver"
        )
        noted = await _post(client, url, {**approve, "comment": "ok"}, "k-1")
        assert _reused(noted) == "differs in comment"
        status = await host.wait("o-key")
        # Read back and retried after the order ended: still the first decision.
        back = await (await client.get("/api/orders/o-key/approvals/k-1")).json()
        assert await _post(client, url, approve, "k-1") == first

    assert status["output"]["status"] == "completed"
    assert (back["outcome"], back["decision"]["approved"]) == ("accepted", True)


async def test_a_key_reused_for_another_resolution_is_refused() -> None:
    """A resolution retried by the same operator answers again; by another one, 422."""
    async with order_host() as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        order = refund_fails("o-res-key")
        await place(host, client, order, "compensation_failed")

        url = "/api/orders/o-res-key/resolution"
        first = await _post(client, url, {"resolvedBy": "ops-kim", "note": "bank"}, "r-1")
        await host.wait("o-res-key")
        again = await _post(client, url, {"resolvedBy": "ops-kim", "note": "bank"}, "r-1")
        other = await _post(client, url, {"resolvedBy": "ops-lee", "note": "bank"}, "r-1")
        renoted = await _post(client, url, {"resolvedBy": "ops-kim"}, "r-1")

    assert first[0] == 200 and again == first
    assert _reused(other) == "differs in resolvedBy"
    assert _reused(renoted) == "differs in note"


def test_a_record_kept_before_the_comment_digest_still_answers_retries() -> None:
    """An order already running keeps records with no digest: its comment cannot be compared,
    so a retry answers as before; its verdict still can."""
    old = {"by": "maria", "approved": True, "requestId": "k-1", "decidedAt": datetime.now(UTC)}
    known = OrderDecisionOutcome.model_validate(
        {
            "orderId": "o",
            "kind": "approval",
            "requestId": "k-1",
            "outcome": "accepted",
            "decision": old,
        }  # fmt: skip
    )
    retry = ManagerApprovalEvent(approved=True, approver="maria", comment="typed again")
    refuse_reused_key(known, retry)
    with pytest.raises(ApiError) as reused:
        refuse_reused_key(known, retry.model_copy(update={"approved": False}))
    assert (reused.value.status, reused.value.details[0]["message"]) == (422, "differs in approved")
