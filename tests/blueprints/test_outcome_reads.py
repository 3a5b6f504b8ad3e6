"""Reading back a decision's outcome shows who decided and why: to the order's people only."""

from __future__ import annotations

from typing import Any

from api_harness import Api, FakeDurableClient
from test_identity import principal_headers

BOSS = "boss@example.com"


def _decided_order(client: FakeDurableClient) -> None:
    order = {
        "orderId": "po-1",
        "amount": 2000,
        "requesterEmail": "sam@example.com",
        "approverEmail": BOSS,
        "approvers": [BOSS],
        "threshold": 1000,
        "timeoutHours": 24,
    }
    client.add_instance("po-1", "purchase_order_approval", input_=order)
    decision = {"approved": False, "approver": BOSS, "comments": "over budget",
                "requestId": "k-1", "decidedAt": "2026-01-01T00:00:00Z"}  # fmt: skip
    client.instances["po-1"]["customStatus"] = {
        "stage": "rejected",
        "amount": 2000,
        "threshold": 1000,
        "approvers": [BOSS],
        "decision": decision,
    }


async def test_a_purchase_order_outcome_is_shown_to_its_people_only(monkeypatch: Any) -> None:
    monkeypatch.setenv("WORKFLOW_AUTH", "easyauth")
    client = FakeDurableClient()
    _decided_order(client)
    api = Api(client)
    url = "purchase-orders/po-1/decisions/k-1"

    stranger = await api("GET", url, headers=principal_headers("mallory@example.com"))
    assert stranger.status == 403, stranger.body
    assert "over budget" not in str(stranger.body)
    for person in (BOSS, "sam@example.com"):
        shown = await api("GET", url, headers=principal_headers(person))
        assert shown.status == 200, shown.body
        assert shown.body["decision"]["comments"] == "over budget"
