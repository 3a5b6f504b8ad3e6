"""The chain's rules as plain functions: reminder times, timeout policies, how a chain ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from blueprints.approvals.chain_policy import (
    final_status,
    human_decision,
    reminder_time,
    timeout_decision,
)
from models.approvals import ApprovalDecisionEvent, ApprovalLevel

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


def _level(**policy: object) -> ApprovalLevel:
    return ApprovalLevel.model_validate(
        {"level": 1, "approverEmail": "lead@example.com", "timeoutHours": 8, **policy}
    )


def test_the_reminder_comes_the_lead_time_before_the_deadline() -> None:
    deadline = START + timedelta(hours=48)
    assert reminder_time(START, deadline, 6) == deadline - timedelta(hours=6)
    assert reminder_time(START, deadline, None) == deadline - timedelta(hours=12)
    # A lead time as long as the window leaves no room for a reminder.
    assert reminder_time(START, deadline, 48) is None


def test_each_timeout_policy_decides_as_system() -> None:
    assert timeout_decision(_level(autoApprove=True), START).outcome == "auto_approved"
    assert timeout_decision(_level(autoReject=True), START).outcome == "auto_rejected"
    escalated = timeout_decision(_level(), START)
    assert (escalated.outcome, escalated.approved, escalated.approver_email) == (
        "escalated",
        None,
        "system",
    )


def test_how_a_chain_ends_follows_its_last_decision() -> None:
    approve = timeout_decision(_level(autoApprove=True), START)
    reject = timeout_decision(_level(autoReject=True), START)
    escalate = timeout_decision(_level(), START)
    assert final_status([escalate, approve]) == "approved"
    assert final_status([approve, reject]) == "timeout"
    assert final_status([approve, escalate]) == "timeout"


def test_only_the_approver_or_a_delegate_decides() -> None:
    level = _level(delegates=["deputy@example.com"])
    event = ApprovalDecisionEvent(approved=True, approver_email="deputy@example.com")
    decision = human_decision(level, event, START)
    assert decision is not None and decision.on_behalf_of == "lead@example.com"
    outsider = ApprovalDecisionEvent(approved=True, approver_email="eve@example.com")
    assert human_decision(level, outsider, START) is None
