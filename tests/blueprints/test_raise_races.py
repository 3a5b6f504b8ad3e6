"""An instance that ends or is purged between a route's status check and its raise: a 4xx.

Order and approval decisions, a batch's cancel, a monitor's stop, the generic events route.

The durable client reports the host's 410 (finished) and 404 (unknown) only in an exception's
message; a route that let it through answered 500 for a request that was fine when it checked.
The fake client here finishes or purges the instance at the moment the route raises.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_harness import Api, FakeDurableClient


class EndsWhenRaised(FakeDurableClient):
    """Ends (``"Completed"``) or purges (``None``) an instance just before an event lands."""

    def __init__(self, becomes: str | None) -> None:
        super().__init__()
        self.becomes = becomes

    async def raise_event(self, instance_id: str, event_name: str, *args: Any, **kw: Any) -> None:
        if self.becomes is None:
            self.instances.pop(instance_id, None)
        else:
            self.instances[instance_id]["runtimeStatus"] = self.becomes
            self.instances[instance_id]["output"] = json.dumps({"status": "completed"})
        await super().raise_event(instance_id, event_name, *args, **kw)


def _order(client: FakeDurableClient, stage: str) -> None:
    # Who placed it: the approval routes check that the customer does not decide their order.
    placed = {"orderId": "o-1", "customerId": "cust-1", "customerEmail": "ana@example.com"}
    client.add_instance("o-1", "process_order", input_=json.dumps(placed))
    status = {"stage": stage, "orderId": "o-1", "total": 1200}
    client.instances["o-1"]["customStatus"] = status


async def test_a_cancel_on_an_order_that_ends_meanwhile_is_a_409() -> None:
    client = EndsWhenRaised("Completed")
    _order(client, "processing_payment")
    response = await Api(client)("POST", "orders/o-1/cancel", {})
    assert response.status == 409, response.body
    assert response.error["code"] == "OrderAlreadyProcessed"


async def test_an_approval_on_an_order_purged_meanwhile_is_a_404() -> None:
    client = EndsWhenRaised(None)
    _order(client, "awaiting_approval")
    response = await Api(client)(
        "POST", "orders/o-1/approval", {"approved": True, "approver": "maria"}
    )
    assert response.status == 404, response.body
    assert response.error["code"] == "OrderNotFound"


async def test_an_approval_on_an_order_that_ends_meanwhile_is_refused_with_why() -> None:
    client = EndsWhenRaised("Completed")
    _order(client, "awaiting_approval")
    response = await Api(client)(
        "POST", "orders/o-1/approval", {"approved": True, "approver": "maria"}
    )
    assert response.status == 409, response.body
    assert response.error["code"] == "NotAwaitingApproval"


async def test_a_human_approval_purged_meanwhile_is_a_404() -> None:
    client = EndsWhenRaised(None)
    client.add_instance("h-1", "human_approval")
    client.instances["h-1"]["customStatus"] = {"stage": "awaiting_approval"}
    response = await Api(client)("POST", "approve/h-1", {"approver": "ana"})
    assert response.status == 404, response.body


async def test_an_approval_before_the_instance_first_runs_is_kept_not_refused(
    monkeypatch: Any,
) -> None:
    """No status yet (the first episode has not run): the runtime keeps the event until the
    instance waits for it, so the route raises it and answers 202 pending, not 409."""
    monkeypatch.setenv("HUMAN_APPROVAL_WAIT_SECONDS", "0")
    client = FakeDurableClient()
    client.add_instance("h-2", "human_approval", status="Pending")
    response = await Api(client)(
        "POST", "approve/h-2", {"approver": "ana"}, headers={"Idempotency-Key": "k-2"}
    )
    assert response.status == 202, response.body
    assert response.body["outcome"] == "pending"
    assert response.headers["location"] == "/api/approve/h-2/k-2"
    assert [(i, e) for i, e, _ in client.raised] == [("h-2", "ApprovalEvent")]


async def test_a_batch_cancel_on_a_job_that_ends_meanwhile_is_a_410() -> None:
    client = EndsWhenRaised("Completed")
    client.add_instance("job-1", "batch_job")
    response = await Api(client)("POST", "batches/job-1/cancel", {})
    assert response.status == 410, response.body
    assert response.error["code"] == "InstanceFinished"


async def test_a_monitor_stop_on_a_monitor_purged_meanwhile_is_a_404() -> None:
    client = EndsWhenRaised(None)
    client.add_instance("mon-1", "health_monitor")
    response = await Api(client)("POST", "monitors/mon-1/stop", {})
    assert response.status == 404, response.body
    assert response.error["code"] == "InstanceNotFound"


async def test_a_chain_decision_on_a_chain_purged_meanwhile_is_a_404() -> None:
    client = EndsWhenRaised(None)
    client.add_instance("approval-r1", "approval_chain")
    client.instances["approval-r1"]["customStatus"] = {
        "stage": "awaiting_decision",
        "requestId": "r1",
        "levelCount": 1,
        "currentLevel": 1,
        "approver": "lead@example.com",
    }
    response = await Api(client)(
        "POST",
        "approvals/approval-r1/levels/1",
        {"approved": True, "approverEmail": "lead@example.com"},
    )
    assert response.status == 404, response.body


async def test_a_purchase_order_decision_on_an_order_purged_meanwhile_is_a_404() -> None:
    client = EndsWhenRaised(None)
    client.add_instance("po-1", "purchase_order_approval")
    client.instances["po-1"]["customStatus"] = {
        "stage": "awaiting_approval",
        "amount": 2000,
        "threshold": 1000,
        "approvers": ["boss@example.com"],
    }
    response = await Api(client)(
        "POST", "purchase-orders/po-1/decision", {"approved": True, "approver": "boss@example.com"}
    )
    assert response.status == 404, response.body
    assert response.error["code"] == "PurchaseOrderNotFound"


# A document gone from the task hub is looked up in its archive (in the test's Azurite).
@pytest.mark.usefixtures("app_storage")
async def test_a_document_change_on_a_document_purged_meanwhile_is_a_404() -> None:
    client = EndsWhenRaised(None)
    client.add_instance(
        "doc-9", "wip_document", input_={"title": "Hire", "creator": "hr", "applicationId": "A1"}
    )
    response = await Api(client)("PATCH", "documents/doc-9", {"title": "Hire now"})
    assert response.status == 404, response.body
    assert response.error["code"] == "DocumentNotFound"
