"""What became of a decision request on an approval chain, read from the chain's custom status.

A decision is an event, and raising an event answers nothing, so each decision carries a
request ID and the chain's custom status records what it did with it (see
``chain_orchestrator.py``). A plain function reads the outcome back:

* **accepted**: the level's decision names this request;
* **refused**: the chain refused the request (not a decider, a malformed payload), or the level
  was decided by another request or by its deadline before this one could count, or the chain
  ended without applying it;
* **pending**: none of that yet (the event is on its way).

A request whose key names the level's decision but whose verdict, approver or comments differ
from it reused the key for another request: :func:`refuse_reused_key` answers it 422.
"""

from __future__ import annotations

from typing import Literal

from blueprints import key_reuse
from models.approvals import (
    ApprovalChainStatus,
    ApprovalDecision,
    ApprovalDecisionEvent,
    ApprovalDecisionOutcome,
)

__all__ = ["decision_outcome", "refuse_reused_key"]


def _by_whom(decision: ApprovalDecision) -> str:
    if decision.outcome in ("auto_approved", "auto_rejected", "escalated"):
        return f"{decision.outcome.replace('_', ' ')} at its deadline"
    return f"{decision.outcome} by {decision.approver_email}"


def decision_outcome(
    instance_id: str,
    level: int,
    request_id: str,
    chain: ApprovalChainStatus | None,
    finished: bool,
) -> ApprovalDecisionOutcome:
    """Return the outcome of the decision request ``request_id`` on ``level``.

    Parameters
    ----------
    instance_id : str
        The chain's instance ID.
    level : int
        The level the request was for.
    request_id : str
        The request's ID.
    chain : ApprovalChainStatus | None
        The chain's custom status (None when it cannot be read).
    finished : bool
        Whether the instance has stopped for good.

    Returns
    -------
    ApprovalDecisionOutcome
        ``accepted``, ``refused`` with a ``code`` and ``reason``, or ``pending``.
    """

    def outcome(
        kind: Literal["accepted", "refused", "pending"],
        code: str | None = None,
        reason: str | None = None,
        decision: ApprovalDecision | None = None,
    ) -> ApprovalDecisionOutcome:
        return ApprovalDecisionOutcome(
            instance_id=instance_id,
            level=level,
            request_id=request_id,
            outcome=kind,
            code=code,
            reason=reason,
            decision=decision,
        )

    decisions = chain.decisions if chain else []
    refusals = chain.refusals if chain else []
    decided = next((d for d in decisions if d.level == level), None)
    if decided is not None and decided.request_id == request_id:
        return outcome("accepted", decision=decided)
    refusal = next((r for r in refusals if r.request_id == request_id), None)
    if refusal is not None:
        return outcome("refused", refusal.code, refusal.reason)
    if decided is not None:
        reason = f"level {level} was already decided ({_by_whom(decided)})"
        return outcome("refused", "LevelAlreadyDecided", reason, decision=decided)
    if finished:
        return outcome("refused", "ApprovalNotRunning", "the chain ended before this decision")
    return outcome("pending")


def refuse_reused_key(known: ApprovalDecisionOutcome, event: ApprovalDecisionEvent) -> None:
    """Answer 422 when the level's decision took the request's key with another payload.

    Raises
    ------
    ApiError
        422 ``IdempotencyKeyReused`` (``blueprints.key_reuse``); nothing for any other outcome.
    """
    decided = known.decision
    if known.outcome != "accepted" or decided is None:
        return
    compared: dict[str, tuple[object, object]] = {
        "approved": (decided.approved, event.approved),
        "approverEmail": (decided.approver_email, event.approver_email),
        "comments": (decided.comments, event.comments),
    }
    key_reuse.refuse_reused_key(known.request_id, compared)
