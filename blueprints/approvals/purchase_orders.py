"""Purchase orders: ``purchase_order_approval`` approves small orders itself and asks for big ones.

Under the threshold (default 1000) the order is placed at once (``"Auto-approved"``). At or
above it the approver is notified and the workflow waits for ``approval_received``
(``{"approver", "approved", "comments"}``) against a timer (default 24 hours): approved by a
designated approver, ``"Approved by '{approver}'"`` and the order is placed; rejected,
``"Rejected by '{approver}'"`` and nothing is placed; no decision in time, ``"Cancelled"``.
A decision from anyone else is refused and the order keeps waiting.

The custom status names the designated approvers, the decision (with the request ID that made
it) and the refused decision requests, so the routes (``purchase_order_http.py``) can tell a
caller what became of a decision.
"""

import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from pydantic import ValidationError

from blueprints.approvals import purchase_order_rules as rules
from blueprints.handoff import settle_handoff, wait_again
from models.approvals import (
    PURCHASE_ORDER_EVENT,
    PURCHASE_ORDER_ORCHESTRATOR,
    PlacePurchaseOrderInput,
    PurchaseOrderApprovalEvent,
    PurchaseOrderDecision,
    PurchaseOrderInput,
    PurchaseOrderRefusal,
    PurchaseOrderStatus,
)
from models.common import parse_event
from models.notifications import SendNotificationInput
from models.registry import register_workflow

logger = logging.getLogger(__name__)

bp = df.Blueprint()

register_workflow(
    PURCHASE_ORDER_ORCHESTRATOR,
    PurchaseOrderInput,
    events={PURCHASE_ORDER_EVENT: PurchaseOrderApprovalEvent},
    routes={PURCHASE_ORDER_EVENT: "POST /api/purchase-orders/{instanceId}/decision"},
)

# Refused decision requests kept in the custom status.
MAX_REFUSALS = 10


@bp.orchestration_trigger(context_name="context")
def purchase_order_approval(context: df.DurableOrchestrationContext) -> Generator[Any, Any, str]:
    """Approve a purchase order automatically, or have its approver approve or reject it in time.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        The orchestration context; its input is a :class:`~models.approvals.PurchaseOrderInput`
        as JSON.

    Returns
    -------
    str
        ``"Auto-approved"``, ``"Approved by '{approver}'"``, ``"Rejected by '{approver}'"`` or
        ``"Cancelled"``.
    """
    order = PurchaseOrderInput.model_validate(context.get_input(expected_type=dict))
    status = PurchaseOrderStatus(
        stage="approved", amount=order.amount, threshold=order.threshold, approvers=order.deciders
    )
    if order.amount < order.threshold:
        context.set_custom_status(status.to_wire())
        yield from _place(context, order, approved_by="system")
        return "Auto-approved"

    status.stage = "awaiting_approval"
    status.deadline = context.current_utc_datetime + timedelta(hours=order.timeout_hours)
    context.set_custom_status(status.to_wire())
    yield context.call_activity("send_notification", _approval_request(context, order))

    timeout = context.create_timer(status.deadline)
    approval = context.wait_for_external_event(PURCHASE_ORDER_EVENT)
    handoff = None
    while True:
        racers = [approval, timeout, *([handoff] if handoff is not None else [])]
        winner = yield context.task_any(racers)
        settle_handoff(handoff, winner)
        handoff = None
        if winner is timeout:
            status.stage = "cancelled"
            context.set_custom_status(status.to_wire())
            return "Cancelled"
        if winner is not approval:
            continue  # the hand-off timer: keep racing the same approval and timeout
        outcome = _read_approval(context, order, approval.result)
        if isinstance(outcome, PurchaseOrderDecision):
            decision = outcome
            break
        if outcome is not None and outcome.request_id:
            status.refusals = [*status.refusals, outcome][-MAX_REFUSALS:]
            context.set_custom_status(status.to_wire())
        # Wait for a usable decision (blueprints/handoff.py says why not a plain new wait).
        approval, handoff = wait_again(context, PURCHASE_ORDER_EVENT)
    timeout.cancel()
    status.decision = decision
    status.stage = "approved" if decision.approved else "rejected"
    context.set_custom_status(status.to_wire())
    if decision.approved:
        yield from _place(context, order, approved_by=decision.approver)
    if not context.is_replaying:
        logger.info("purchase order %s: %s", context.instance_id, rules.verdict(decision))
    return rules.verdict(decision)


def _read_approval(
    context: df.DurableOrchestrationContext, order: PurchaseOrderInput, payload: Any
) -> PurchaseOrderDecision | PurchaseOrderRefusal | None:
    try:
        event = parse_event(PurchaseOrderApprovalEvent, payload)
    except ValidationError:
        # Only the raw event API lets a malformed payload through.
        return None
    outcome = rules.decide(order, event, context.current_utc_datetime)
    if isinstance(outcome, PurchaseOrderRefusal) and not context.is_replaying:
        logger.warning("purchase order %s: %s", context.instance_id, outcome.reason)
    return outcome


def _place(
    context: df.DurableOrchestrationContext, order: PurchaseOrderInput, approved_by: str
) -> Generator[Any, Any, None]:
    placed = PlacePurchaseOrderInput(
        instance_id=context.instance_id,
        order_id=order.order_id,
        amount=order.amount,
        description=order.description,
        approved_by=approved_by,
    )
    yield context.call_activity("place_purchase_order", placed.to_wire())


def _approval_request(context: df.DurableOrchestrationContext, order: PurchaseOrderInput) -> dict:
    return SendNotificationInput(
        notification_id=f"{context.instance_id}:approval-request",
        recipient=", ".join(order.deciders) or "purchase-approvers",
        category="purchase_order_approval",
        subject=f"Purchase order {order.order_id or context.instance_id} ({order.amount:g}) "
        "needs approval",
        body=order.description,
        link=f"/api/purchase-orders/{context.instance_id}/decision",
        workflow=PURCHASE_ORDER_ORCHESTRATOR,
        instance_id=context.instance_id,
    ).to_wire()
