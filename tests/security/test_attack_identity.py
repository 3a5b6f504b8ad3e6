"""Identity from the platform: nobody decides, submits or reads as somebody else.

Every attack is sent with a valid function key: the key says which application calls, the
App Service principal says which person; the body's names count for nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.attacker import SecureHost, eventually, unique

pytestmark = [pytest.mark.azurite, pytest.mark.host]

REQUESTER = "sam@example.com"
LEAD = "lead@example.com"
DELEGATE = "deputy@example.com"
MALLORY = "mallory@example.com"


def _chain(host: SecureHost) -> str:
    request_id = unique("req")
    body = {
        "requestId": request_id,
        "requestType": "purchase",
        "requesterId": "u-1",
        "requesterEmail": REQUESTER,
        "amount": 5000,
        "approvalChain": [
            {"level": 1, "approverEmail": LEAD, "timeoutHours": 24, "delegates": [DELEGATE]},
            {"level": 2, "approverEmail": "cfo@example.com", "timeoutHours": 24},
        ],
    }
    # Starting on somebody else's behalf is refused too.
    assert host.call("POST", "/api/approvals", body, as_=MALLORY).status == 403
    started = host.call("POST", "/api/approvals", body, as_=REQUESTER)
    assert started.status == 202, started.body
    instance_id = str(started.body["id"])

    def waiting() -> Any:
        view = host.call("GET", f"/api/approvals/{instance_id}", as_=LEAD)
        custom = view.body.get("customStatus") or {} if view.status == 200 else {}
        return custom if custom.get("stage") == "awaiting_decision" else None

    eventually(waiting, what="level 1 to wait for a decision")
    return instance_id


def _level_state(host: SecureHost, instance_id: str) -> tuple[Any, Any]:
    custom = host.call("GET", f"/api/approvals/{instance_id}", as_=LEAD).body["customStatus"]
    return custom["stage"], custom["currentLevel"]


def test_nobody_decides_a_level_as_its_approver(secure_host: SecureHost) -> None:
    host = secure_host
    instance_id = _chain(host)
    url = f"/api/approvals/{instance_id}/levels/1"
    decision = {"approved": True, "approverEmail": LEAD}

    nobody = host.call("POST", url, decision)
    assert (nobody.status, nobody.code) == (401, "Unauthenticated")
    forged = host.call("POST", url, decision, as_=MALLORY)
    assert (forged.status, forged.code) == (403, "IdentityMismatch")
    herself = host.call("POST", url, {**decision, "approverEmail": MALLORY}, as_=MALLORY)
    assert (herself.status, herself.code) == (403, "NotAnApprover")
    assert _level_state(host, instance_id) == ("awaiting_decision", 1)

    # The delegate, signed in, may; the chain moves on to level 2.
    accepted = host.call("POST", url, {**decision, "approverEmail": DELEGATE}, as_=DELEGATE)
    # 200 once the chain applied it, 202 while not yet (docs/approvals.md).
    assert accepted.status in (200, 202), accepted.body
    eventually(lambda: _level_state(host, instance_id) == ("awaiting_decision", 2), what="level 2")


def test_approver_addresses_are_not_served_to_anonymous_callers(secure_host: SecureHost) -> None:
    host = secure_host
    instance_id = _chain(host)
    for path in (
        f"/api/approvals/{instance_id}",
        f"/api/approvals?approver={LEAD}",
        f"/api/notifications?recipient={LEAD}",
    ):
        answer = host.call("GET", path)
        assert answer.status == 401, path
        assert LEAD not in answer.raw.decode()
    assert host.call("GET", f"/api/approvals/{instance_id}", as_=MALLORY).status == 403
    assert host.call("GET", f"/api/approvals?approver={LEAD}", as_=MALLORY).status == 403
    assert host.call("GET", f"/api/notifications?recipient={LEAD}", as_=MALLORY).status == 403
    assert host.call("GET", "/api/notifications", as_=MALLORY).status == 403
    inbox = host.call("GET", f"/api/approvals?approver={LEAD}", as_=LEAD)
    assert inbox.status == 200 and inbox.body["tasks"]
    # Nor through the generic instance routes: an approval chain is not theirs to show.
    assert host.call("GET", f"/api/instances/{instance_id}").status == 404


def test_the_human_interaction_approve_route_checks_the_caller(secure_host: SecureHost) -> None:
    host = secure_host
    started = host.call("POST", "/api/start-approval", {"timeoutSeconds": 600})
    instance_id = started.body["id"]
    url = f"/api/approve/{instance_id}"
    assert host.call("POST", url, {"approver": LEAD}).status == 401
    assert host.call("POST", url, {"approver": LEAD}, as_=MALLORY).status == 403
    # Nor around the route: the generic events endpoint sends the caller to it.
    events = f"/api/instances/{instance_id}/events/ApprovalEvent"
    around = host.call("POST", events, {"approver": LEAD}, as_=MALLORY)
    assert (around.status, around.code) == (403, "EventHasOwnRoute")
    status = host.call("GET", f"/api/instances/{instance_id}").body
    assert status["runtimeStatus"] == "Running"

    assert host.call("POST", url, {}, as_=LEAD).status == 200
    done = eventually(
        lambda: (
            (s := host.call("GET", f"/api/instances/{instance_id}").body)["runtimeStatus"]
            == "Completed"
            and s
        ),
        what="the approval to complete",
    )
    assert done["output"] == "Approved"


def test_a_purchase_order_is_approved_only_by_the_signed_in_approver(
    secure_host: SecureHost,
) -> None:
    host = secure_host
    order = {"amount": 25_000, "requesterEmail": REQUESTER, "approverEmail": LEAD}
    assert host.call("POST", "/api/purchase-orders", order, as_=MALLORY).status == 403
    started = host.call("POST", "/api/purchase-orders", order, as_=REQUESTER)
    assert started.status == 202
    status_url = started.body["statusQueryGetUri"]
    instance_id = started.body["id"]
    eventually(
        lambda: (
            (host.call("GET", status_url, key=None).body.get("customStatus") or {}).get("stage")
            == "awaiting_approval"
        ),
        what="the order to wait for approval",
    )
    url = f"/api/purchase-orders/{instance_id}/decision"
    assert host.call("POST", url, {"approver": LEAD, "approved": True}).status == 401
    forged = host.call("POST", url, {"approver": LEAD, "approved": True}, as_=MALLORY)
    assert (forged.status, forged.code) == (403, "IdentityMismatch")
    events = f"/api/instances/{instance_id}/events/approval_received"
    around = host.call("POST", events, {"approver": LEAD}, as_=LEAD)
    assert (around.status, around.code) == (403, "EventHasOwnRoute")
    status = host.call("GET", status_url, key=None).body
    assert status["runtimeStatus"] == "Running"
    assert status["customStatus"]["stage"] == "awaiting_approval"


def test_an_order_is_approved_only_by_a_designated_approver_never_its_customer(
    secure_host: SecureHost,
) -> None:
    host = secure_host
    sku, order_id, customer = unique("SKU"), unique("o"), "buyer@example.com"
    assert host.call("POST", f"/api/inventory/{sku}", {"quantity": 5}).status == 202
    eventually(lambda: host.call("GET", f"/api/inventory/{sku}").status == 200, what="the stock")
    line = {"productId": "p", "sku": sku, "name": "Desk", "quantity": 2, "unitPrice": 600.0}
    order = {
        "orderId": order_id,
        "customerId": "c-1",
        "customerEmail": customer,
        "items": [line],
        "shippingAddress": {
            "street": "1 Main St",
            "city": "Seattle",
            "state": "WA",
            "zipCode": "98101",
            "country": "US",
        },
        "paymentDetails": {"method": "credit_card", "token": "tok_visa"},
    }
    assert host.call("POST", "/api/orders", order, as_=customer).status == 202
    eventually(
        lambda: (
            host.call("GET", f"/api/orders/{order_id}").body.get("stage") == "awaiting_approval"
        ),
        what="the order to wait for approval",
    )
    url = f"/api/orders/{order_id}/approval"
    own = host.call("POST", url, {"approved": True, "approver": customer}, as_=customer)
    assert (own.status, own.code) == (403, "OwnOrder")
    other = host.call("POST", url, {"approved": True, "approver": MALLORY}, as_=MALLORY)
    assert (other.status, other.code) == (403, "NotAnApprover")
    assert host.call("GET", f"/api/orders/{order_id}").body["stage"] == "awaiting_approval"
    manager = "manager@example.com"
    taken = host.call("POST", url, {"approved": True, "approver": manager}, as_=manager)
    assert taken.status in (200, 202), taken.body
    assert taken.status == 202 or taken.body["outcome"] == "accepted"


def _document(host: SecureHost) -> str:
    document_id = unique("doc")
    body = {"id": document_id, "title": "Onboarding", "creator": "hr", "applicationId": "A1"}
    created = host.call("POST", "/api/documents", body, as_="hr@example.com")
    assert created.status == 202, created.body
    eventually(
        lambda: (
            host.call("GET", f"/api/documents/{document_id}", as_="hr@example.com").status == 200
        ),
        what="the document to exist",
    )
    return document_id


def test_document_changes_act_only_for_the_signed_in_caller(secure_host: SecureHost) -> None:
    host = secure_host
    document_id = _document(host)
    base = f"/api/documents/{document_id}"
    feedback = {"feedback": "Strong", "isPassed": True, "author": "interviewer@example.com"}
    attacks = [
        ("POST", f"{base}/submit", {"approved": True, "approver": "cto@example.com"}, {}),
        ("POST", f"{base}/cancel", {"reason": "x", "actor": "cto@example.com"}, {}),
        ("PATCH", base, {"title": "Forged"}, {"X-Actor": "cto@example.com"}),
        ("POST", f"/api/instances/{document_id}/events/InterviewFeedback", feedback, {}),
    ]
    for method, path, body, headers in attacks:
        nobody = host.call(method, path, body, headers=headers)
        assert nobody.status == 401, (path, nobody.body)
        forged = host.call(method, path, body, as_=MALLORY, headers=headers)
        assert (forged.status, forged.code) == (403, "IdentityMismatch"), (path, forged.body)

    document = host.call("GET", base, as_="hr@example.com").body
    assert (document["revision"], document["title"], document["state"]) == (
        1,
        "Onboarding",
        "collecting",
    )
    # The signed-in author's feedback is taken, recorded under their name.
    mine = {**feedback, "author": "interviewer@example.com"}
    events = f"/api/instances/{document_id}/events/InterviewFeedback"
    assert host.call("POST", events, mine, as_="interviewer@example.com").status == 202
