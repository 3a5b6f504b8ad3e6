"""The approval models accept what a caller may send and refuse what a chain cannot run."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from models.approvals import (
    ApprovalChainRequest,
    ApprovalDecisionEvent,
    HumanApprovalInput,
    PurchaseOrderInput,
    decision_event_name,
)


def _chain(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requestId": "exp-1",
        "requestType": "expense",
        "requesterId": "u1",
        "requesterEmail": "Sam@Example.com",
        "amount": 10,
        "approvalChain": [
            {"level": 1, "approverEmail": " Lead@Example.com ", "timeoutHours": 0.5},
            {
                "level": 2,
                "approverEmail": "cfo@example.com",
                "timeoutHours": 72,
                "autoReject": True,
            },
        ],
    }
    body.update(changes)
    return body


def test_a_chain_is_read_with_emails_lower_cased() -> None:
    chain = ApprovalChainRequest.model_validate(_chain())
    assert chain.requester_email == "sam@example.com"
    assert chain.approval_chain[0].approver_email == "lead@example.com"
    assert chain.approval_chain[0].timeout_hours == 0.5
    assert chain.approval_chain[1].auto_reject


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"approvalChain": []}, "at least 1"),
        ({"requestId": "has space"}, "pattern"),
        ({"requestId": "a/b"}, "pattern"),
        ({"amount": -1}, "greater than or equal"),
        (
            {"approvalChain": [{"level": 2, "approverEmail": "a@b.c", "timeoutHours": 1}]},
            "numbered 1, 2, 3",
        ),
        (
            {"approvalChain": [{"level": 1, "approverEmail": "a@b.c", "timeoutHours": 0}]},
            "greater than 0",
        ),
        (
            {
                "approvalChain": [
                    {
                        "level": 1,
                        "approverEmail": "a@b.c",
                        "timeoutHours": 1,
                        "autoApprove": True,
                        "autoReject": True,
                    }
                ]
            },
            "cannot both",
        ),
        (
            {
                "approvalChain": [
                    {"level": 1, "approverEmail": "SAM@example.com", "timeoutHours": 1}
                ]
            },
            "own request",
        ),
        (
            {
                "approvalChain": [
                    {
                        "level": 1,
                        "approverEmail": "a@b.c",
                        "timeoutHours": 1,
                        "delegates": ["sam@example.com"],
                    }
                ]
            },
            "own request",
        ),
        ({"requesterEmail": "not-an-email"}, "pattern"),
    ],
)
def test_a_chain_that_cannot_run_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ApprovalChainRequest.model_validate(_chain(**changes))


def test_a_rejection_needs_comments_an_approval_does_not() -> None:
    assert ApprovalDecisionEvent.model_validate({"approved": True, "approverEmail": "a@b.c"})
    with pytest.raises(ValidationError, match="comments"):
        ApprovalDecisionEvent.model_validate({"approved": False, "approverEmail": "a@b.c"})
    rejected = ApprovalDecisionEvent.model_validate(
        {"Approved": False, "ApproverEmail": "A@B.c", "Comments": "no"}
    )
    assert rejected.approver_email == "a@b.c"


def test_event_names_are_per_request_and_level() -> None:
    assert decision_event_name("exp-1", 2) == "approval_exp-1_level_2"
    assert decision_event_name("exp-1", 2) != decision_event_name("exp-1", 3)


def test_defaults_of_the_recipe_and_purchase_orders() -> None:
    assert HumanApprovalInput.model_validate({}).timeout_seconds == 300
    order = PurchaseOrderInput.model_validate({"amount": 5})
    assert (order.threshold, order.timeout_hours) == (1000, 24)
