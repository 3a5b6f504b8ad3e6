"""The rules of purchase-order approval, as plain functions (no host, no storage).

Who may decide an order, what a decision does, whether a repost is the same order, what
became of a decision request (read from the order's custom status), and whether a request
reused the key of a decision made with another payload (answered 422).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from blueprints import key_reuse
from models.approvals import (
    PurchaseOrderApprovalEvent,
    PurchaseOrderDecision,
    PurchaseOrderDecisionOutcome,
    PurchaseOrderDecisionRequest,
    PurchaseOrderInput,
    PurchaseOrderRefusal,
    PurchaseOrderRequest,
    PurchaseOrderStatus,
)

__all__ = [
    "decide",
    "decision_outcome",
    "parse_approvers",
    "refuse_reused_key",
    "same_order",
    "verdict",
]


def parse_approvers(setting: str) -> list[str]:
    """Return the e-mails of a comma-separated setting, lower-cased, blanks dropped."""
    return [part.strip().lower() for part in setting.split(",") if part.strip()]


def decide(
    order: PurchaseOrderInput, event: PurchaseOrderApprovalEvent, now: datetime
) -> PurchaseOrderDecision | PurchaseOrderRefusal:
    """Return the decision an approval event makes, or its refusal (not a designated approver).

    An order started before approvers were kept in its input has none: then, as before, any
    approver decides (``request_id`` may be missing on events raised through the raw API).
    """
    approver = event.approver.strip()
    deciders = order.deciders
    if deciders and approver.lower() not in deciders:
        return PurchaseOrderRefusal(
            request_id=event.request_id or "",
            code="NotTheApprover",
            reason=f"{approver} is not the order's approver ({', '.join(deciders)})",
        )
    return PurchaseOrderDecision(
        approved=event.approved,
        approver=approver,
        comments=event.comments,
        request_id=event.request_id,
        decided_at=now,
    )


def verdict(decision: PurchaseOrderDecision) -> str:
    """Return the orchestration's output for a person's decision."""
    word = "Approved" if decision.approved else "Rejected"
    return f"{word} by '{decision.approver}'"


def same_order(request: PurchaseOrderRequest, running: PurchaseOrderInput) -> bool:
    """Whether a repost is the order already running (threshold and timeout when given)."""
    if (request.amount, request.description, request.requester_email) != (
        running.amount,
        running.description,
        running.requester_email,
    ):
        return False
    if request.approver_email is not None and request.approver_email != running.approver_email:
        return False
    if request.threshold is not None and request.threshold != running.threshold:
        return False
    return request.timeout_hours is None or request.timeout_hours == running.timeout_hours


def decision_outcome(
    order_id: str, request_id: str, status: PurchaseOrderStatus | None, finished: bool
) -> PurchaseOrderDecisionOutcome:
    """Return what became of the decision request ``request_id`` on an order.

    ``accepted`` when the order's decision names it; ``refused`` when the order refused it,
    was decided otherwise first (another request, the threshold, the timeout), or ended; else
    ``pending``.
    """

    def outcome(
        kind: Literal["accepted", "refused", "pending"],
        code: str | None = None,
        reason: str | None = None,
    ) -> PurchaseOrderDecisionOutcome:
        decision = status.decision if status else None
        return PurchaseOrderDecisionOutcome(
            order_id=order_id,
            request_id=request_id,
            outcome=kind,
            code=code,
            reason=reason,
            decision=decision,
        )

    if status is not None and status.decision is not None:
        if status.decision.request_id == request_id:
            return outcome("accepted")
        reason = f"the order was already {verdict(status.decision).lower()}"
        return outcome("refused", "AlreadyDecided", reason)
    refusal = (
        next((r for r in status.refusals if r.request_id == request_id), None) if status else None
    )
    if refusal is not None:
        return outcome("refused", refusal.code, refusal.reason)
    if status is not None and status.stage != "awaiting_approval":
        reasons = {
            "approved": "the order was approved automatically (under the threshold)",
            "cancelled": "nobody decided in time: the order was cancelled",
        }
        return outcome("refused", "NotAwaitingApproval", reasons.get(status.stage, status.stage))
    if finished:
        return outcome("refused", "NotAwaitingApproval", "the order ended before this decision")
    return outcome("pending")


def refuse_reused_key(
    known: PurchaseOrderDecisionOutcome, request: PurchaseOrderDecisionRequest
) -> None:
    """Answer 422 when the order's decision took the request's key with another payload.

    Raises
    ------
    ApiError
        422 ``IdempotencyKeyReused`` (``blueprints.key_reuse``); nothing for any other outcome.
    """
    decision = known.decision
    if known.outcome != "accepted" or decision is None:
        return
    compared: dict[str, tuple[object, object]] = {
        "approved": (decision.approved, request.approved),
        # decide() records the approver stripped.
        "approver": (decision.approver, request.approver.strip()),
        "comments": (decision.comments, request.comments),
    }
    key_reuse.refuse_reused_key(known.request_id, compared)
