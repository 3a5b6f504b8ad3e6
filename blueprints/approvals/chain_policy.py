"""The rules of an approval chain, as plain functions: no host, no storage, no durable context.

The orchestrator asks these what a level's reminder time is, what a timeout means under the
level's policy, whether a decision comes from someone allowed to make it, how the chain ended,
and what each notification says.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from models.approvals import (
    APPROVAL_CHAIN_ORCHESTRATOR,
    SYSTEM_APPROVER,
    ApprovalChainInput,
    ApprovalChainResult,
    ApprovalDecision,
    ApprovalDecisionEvent,
    ApprovalLevel,
    DecisionOutcome,
    FinalStatus,
)
from models.notifications import SendNotificationInput

__all__ = [
    "chain_continues",
    "decision_uri",
    "escalation_notification",
    "final_status",
    "human_decision",
    "reminder_notification",
    "reminder_time",
    "request_notification",
    "result_notification",
    "timeout_decision",
]

# Without a configured lead time, the reminder goes when three quarters of the window is gone.
_DEFAULT_LEAD_FRACTION = 0.25


def decision_uri(instance_id: str, level: int) -> str:
    """Return the route a decision on a level is posted to."""
    return f"/api/approvals/{instance_id}/levels/{level}"


def reminder_time(start: datetime, deadline: datetime, lead_hours: float | None) -> datetime | None:
    """Return when to remind the approver, or None when the lead time leaves no room.

    Parameters
    ----------
    start : datetime
        When the level started waiting.
    deadline : datetime
        The level's deadline.
    lead_hours : float | None
        How long before the deadline to remind; None for a quarter of the window.

    Returns
    -------
    datetime | None
        The reminder time, strictly between ``start`` and ``deadline``; None when the lead
        time is as long as the window.
    """
    window = deadline - start
    lead = (
        timedelta(hours=lead_hours) if lead_hours is not None else window * _DEFAULT_LEAD_FRACTION
    )
    if lead >= window or lead <= timedelta(0):
        return None
    return deadline - lead


def timeout_decision(level: ApprovalLevel, now: datetime) -> ApprovalDecision:
    """Return what the level's policy decides when its deadline passes without a decision."""
    outcome: DecisionOutcome
    approved: bool | None
    if level.auto_approve:
        outcome, approved, comments = "auto_approved", True, "approved by policy"
    elif level.auto_reject:
        outcome, approved, comments = "auto_rejected", False, "rejected by policy"
    else:
        outcome, approved, comments = "escalated", None, "escalated"
    return ApprovalDecision(
        level=level.level,
        outcome=outcome,
        approved=approved,
        approver_email=SYSTEM_APPROVER,
        comments=f"No decision by the deadline; {comments}.",
        decided_at=now,
    )


def human_decision(
    level: ApprovalLevel, event: ApprovalDecisionEvent, now: datetime
) -> ApprovalDecision | None:
    """Return the decision a person made, or None when they may not decide this level.

    The HTTP route already refuses outsiders (403); this second check covers events raised
    through the raw durable API, which bypasses the route.
    """
    if event.approver_email not in level.deciders:
        return None
    delegate = event.approver_email != level.approver_email
    return ApprovalDecision(
        level=level.level,
        outcome="approved" if event.approved else "rejected",
        approved=event.approved,
        approver_email=event.approver_email,
        on_behalf_of=level.approver_email if delegate else None,
        comments=event.comments,
        decided_at=now,
        request_id=event.request_id,
    )


def chain_continues(decision: ApprovalDecision, level: ApprovalLevel, level_count: int) -> bool:
    """Whether the next level runs after this decision."""
    if decision.outcome in ("rejected", "auto_rejected"):
        return False
    return level.level < level_count


def final_status(decisions: list[ApprovalDecision]) -> FinalStatus:
    """Return how the chain ended, from its last decision.

    An escalation at the last level has nobody left to escalate to: nobody approved, so the
    chain ends ``timeout``, like an auto-rejection.
    """
    last = decisions[-1].outcome
    if last == "rejected":
        return "rejected"
    if last in ("auto_rejected", "escalated"):
        return "timeout"
    return "approved"


def _notification(
    instance_id: str,
    purpose: str,
    recipient: str,
    category: str,
    subject: str,
    body: str,
    link: str,
) -> SendNotificationInput:
    return SendNotificationInput(
        notification_id=f"{instance_id}:{purpose}",
        recipient=recipient,
        category=category,
        subject=subject,
        body=body,
        link=link,
        workflow=APPROVAL_CHAIN_ORCHESTRATOR,
        instance_id=instance_id,
    )


def _summary(chain: ApprovalChainInput) -> str:
    return (
        f"{chain.request_type} {chain.request_id} ({chain.amount:g}) from {chain.requester_email}"
    )


def request_notification(
    instance_id: str, chain: ApprovalChainInput, level: ApprovalLevel, deadline: datetime
) -> SendNotificationInput:
    """The notice asking a level's approver to decide."""
    return _notification(
        instance_id,
        f"level{level.level}:request",
        level.approver_email,
        "approval_request",
        f"Approval needed: {_summary(chain)}",
        f"{chain.description}\nLevel {level.level} of {len(chain.approval_chain)}; "
        f"decide by {deadline.isoformat()}. Delegates: {', '.join(level.delegates) or 'none'}.",
        decision_uri(instance_id, level.level),
    )


def reminder_notification(
    instance_id: str, chain: ApprovalChainInput, level: ApprovalLevel, deadline: datetime
) -> SendNotificationInput:
    """The reminder sent before a level's deadline (once: its ID is per level)."""
    return _notification(
        instance_id,
        f"level{level.level}:reminder",
        level.approver_email,
        "approval_reminder",
        f"Reminder: approval due {deadline.isoformat()}: {_summary(chain)}",
        f"Level {level.level} is still waiting for your decision.",
        decision_uri(instance_id, level.level),
    )


def escalation_notification(
    instance_id: str, chain: ApprovalChainInput, level: ApprovalLevel
) -> SendNotificationInput | None:
    """The notice of an escalation: to the escalation contact, else the next level's approver."""
    levels = chain.approval_chain
    recipient = chain.escalation_email
    if recipient is None and level.level < len(levels):
        recipient = levels[level.level].approver_email
    if recipient is None:
        return None
    return _notification(
        instance_id,
        f"level{level.level}:escalation",
        recipient,
        "approval_escalated",
        f"Escalated: level {level.level} ({level.approver_email}) did not decide on "
        f"{_summary(chain)}",
        "The deadline passed without a decision; the request moves on to the next level.",
        f"/api/approvals/{instance_id}",
    )


def result_notification(
    instance_id: str, chain: ApprovalChainInput, result: ApprovalChainResult
) -> SendNotificationInput:
    """The notice telling the requester how their request ended."""
    last = result.decisions[-1]
    why = f" Comments: {last.comments}" if last.comments else ""
    return _notification(
        instance_id,
        "result",
        chain.requester_email,
        "approval_result",
        f"Your request {chain.request_id} is {result.final_status}",
        f"Final decision at level {last.level} by {last.approver_email}: {last.outcome}.{why}",
        f"/api/approvals/{instance_id}",
    )
