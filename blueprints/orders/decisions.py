"""What became of an approval or resolution request on an order, read from its custom status.

The routes raise ``ManagerApproval`` and ``ManualResolution`` with a request ID; the order
records the one it takes (``OrderStatus.approval`` / ``.resolution``, with that ID) and keeps
it in every later status. A plain function reads a request's outcome back:

* **accepted**: the order's record names this request;
* **refused**: the order took another request first (``AlreadyDecided``), or it is not (or no
  longer) at the stage that waits for one (``NotAwaitingApproval`` / ``NotAwaitingResolution``:
  a cancel or the deadline won the race, the order ended, or it never needed one);
* **pending**: the order waits at that stage and has not taken the event yet.

A request whose key names the record, but whose verdict, author, comment or note differ from
it, reused the key for another request: :func:`refuse_reused_key` answers it 422
(``blueprints/key_reuse.py``). The record keeps a digest of the comment or note rather than the
text (up to 2,000 characters each, in a custom status capped at 16 KB); a record kept before it
did compares the verdict and the author only.
"""

from __future__ import annotations

from typing import Literal

from blueprints import key_reuse
from models.orders import (
    ManagerApprovalEvent,
    ManualResolutionEvent,
    OrderDecisionOutcome,
    OrderDecisionRecord,
    OrderStatus,
)

__all__ = ["WAITING_STAGE", "DecisionKind", "decision_outcome", "refuse_reused_key"]

DecisionKind = Literal["approval", "resolution"]
# The stage at which the order waits for each kind of request.
WAITING_STAGE: dict[DecisionKind, str] = {
    "approval": "awaiting_approval",
    "resolution": "compensation_failed",
}


def _taken(kind: DecisionKind, record: OrderDecisionRecord) -> str:
    if kind == "resolution":
        return f"the failed compensation was already resolved by {record.by}"
    verdict = "approved" if record.approved else "rejected"
    return f"the order was already {verdict} by {record.by}"


def decision_outcome(
    order_id: str,
    kind: DecisionKind,
    request_id: str,
    status: OrderStatus | None,
    finished: bool,
) -> OrderDecisionOutcome:
    """Return the outcome of the request ``request_id`` of a kind on an order.

    Parameters
    ----------
    order_id : str
        The order's ID (its instance ID).
    kind : DecisionKind
        ``"approval"`` or ``"resolution"``.
    request_id : str
        The request's ID.
    status : OrderStatus | None
        The order's custom status (None when it cannot be read).
    finished : bool
        Whether the instance has stopped for good.

    Returns
    -------
    OrderDecisionOutcome
        ``accepted``, ``refused`` with a ``code`` and ``reason``, or ``pending``.
    """
    record = (status.approval if kind == "approval" else status.resolution) if status else None

    def outcome(
        result: Literal["accepted", "refused", "pending"],
        code: str | None = None,
        reason: str | None = None,
    ) -> OrderDecisionOutcome:
        return OrderDecisionOutcome(
            order_id=order_id,
            kind=kind,
            request_id=request_id,
            outcome=result,
            code=code,
            reason=reason,
            decision=record,
        )

    if record is not None:
        if record.request_id == request_id:
            return outcome("accepted")
        return outcome("refused", "AlreadyDecided", _taken(kind, record))
    stage = status.stage if status else None
    if finished or stage != WAITING_STAGE[kind]:
        code = "NotAwaitingApproval" if kind == "approval" else "NotAwaitingResolution"
        reason = f"the order is not waiting for a {kind} (stage: {stage or 'unknown'})"
        return outcome("refused", code, reason)
    return outcome("pending")


def refuse_reused_key(
    known: OrderDecisionOutcome, event: ManagerApprovalEvent | ManualResolutionEvent
) -> None:
    """Answer 422 when the order took the request's key with another verdict or author.

    Raises
    ------
    ApiError
        422 ``IdempotencyKeyReused`` (``blueprints.key_reuse``); nothing for any other outcome.
    """
    record = known.decision
    if known.outcome != "accepted" or record is None:
        return
    compared: dict[str, tuple[object, object]]
    if isinstance(event, ManagerApprovalEvent):
        compared = {
            "approved": (record.approved, event.approved),
            "approver": (record.by, event.approver),
            "comment": (record.text_fingerprint, key_reuse.digest(event.comment)),
        }
    else:
        compared = {
            "resolvedBy": (record.by, event.resolved_by),
            "note": (record.text_fingerprint, key_reuse.digest(event.note)),
        }
    key_reuse.refuse_reused_key(known.request_id, compared)
