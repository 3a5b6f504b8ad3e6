"""Purchase orders: ``purchase_order_approval`` approves small orders itself and asks for big ones.

Under the threshold (default 1000) the order is placed at once (``"Auto-approved"``). At or
above it the approver is notified and the workflow waits for ``approval_received``
(``{"approver": ...}``) against a timer (default 24 hours): ``"Approved by '{approver}'"`` and
the order is placed, or ``"Cancelled"``.

``POST /api/purchase-orders`` reads the defaults from the app settings
``PURCHASE_ORDER_APPROVAL_THRESHOLD`` and ``PURCHASE_ORDER_APPROVAL_TIMEOUT_HOURS`` (a body may
override them) and passes them in the input, so a replay never depends on a setting that
changed since. The approval goes through the generic events endpoint:
``POST /api/instances/{instanceId}/events/approval_received``.
"""

import logging
import os
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import ValidationError

from blueprints import identity
from blueprints.http_errors import ApiError, json_errors, read_json_body, validate_model
from models.approvals import (
    DEFAULT_PO_THRESHOLD,
    DEFAULT_PO_TIMEOUT_HOURS,
    PURCHASE_ORDER_EVENT,
    PURCHASE_ORDER_ORCHESTRATOR,
    PlacePurchaseOrderInput,
    PurchaseOrderApprovalEvent,
    PurchaseOrderInput,
    PurchaseOrderRequest,
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
)

THRESHOLD_SETTING = "PURCHASE_ORDER_APPROVAL_THRESHOLD"
TIMEOUT_SETTING = "PURCHASE_ORDER_APPROVAL_TIMEOUT_HOURS"
DEFAULT_APPROVERS = "purchase-approvers"


@bp.orchestration_trigger(context_name="context")
def purchase_order_approval(context: df.DurableOrchestrationContext) -> Generator[Any, Any, str]:
    """Approve a purchase order automatically or by a person before the timeout.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        The orchestration context; its input is a :class:`~models.approvals.PurchaseOrderInput`
        as JSON.

    Returns
    -------
    str
        ``"Auto-approved"``, ``"Approved by '{approver}'"`` or ``"Cancelled"``.
    """
    order = PurchaseOrderInput.model_validate(context.get_input(expected_type=dict))
    status = PurchaseOrderStatus(stage="approved", amount=order.amount, threshold=order.threshold)
    if order.amount < order.threshold:
        context.set_custom_status(status.to_wire())
        yield from _place(context, order, approved_by="system")
        return "Auto-approved"

    status.stage = "awaiting_approval"
    status.deadline = context.current_utc_datetime + timedelta(hours=order.timeout_hours)
    context.set_custom_status(status.to_wire())
    yield context.call_activity("send_notification", _approval_request(context, order))

    timeout = context.create_timer(status.deadline)
    while True:
        approval = context.wait_for_external_event(PURCHASE_ORDER_EVENT)
        winner = yield context.task_any([approval, timeout])
        if winner is timeout:
            status.stage = "cancelled"
            context.set_custom_status(status.to_wire())
            return "Cancelled"
        try:
            event = parse_event(PurchaseOrderApprovalEvent, approval.result)
        except ValidationError:
            # Only the raw event API lets a malformed payload through: wait for a usable one.
            continue
        timeout.cancel()
        status.stage = "approved"
        context.set_custom_status(status.to_wire())
        yield from _place(context, order, approved_by=event.approver)
        return f"Approved by '{event.approver}'"


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
        recipient=order.approver_email or DEFAULT_APPROVERS,
        category="purchase_order_approval",
        subject=f"Purchase order {order.order_id or context.instance_id} ({order.amount:g}) "
        "needs approval",
        body=order.description,
        link=f"/api/instances/{context.instance_id}/events/{PURCHASE_ORDER_EVENT}",
        workflow=PURCHASE_ORDER_ORCHESTRATOR,
        instance_id=context.instance_id,
    ).to_wire()


def _setting(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0 or value != value:
        raise ApiError(
            500,
            "MisconfiguredSetting",
            f"The app setting {name} must be a non-negative number, not '{text}'.",
        )
    return value


@bp.route(route="purchase-orders", methods=["POST"])
@bp.durable_client_input(client_name="client")
@json_errors
async def start_purchase_order(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start a purchase-order approval; threshold and timeout default to the app settings."""
    request = validate_model(PurchaseOrderRequest, read_json_body(req))
    identity.resolve_actor(req, request.requester_email, "requesterEmail")
    order = PurchaseOrderInput(
        order_id=request.order_id,
        amount=request.amount,
        description=request.description,
        requester_email=request.requester_email,
        approver_email=request.approver_email,
        threshold=_threshold(request),
        timeout_hours=_timeout_hours(request),
    )
    instance_id = await client.start_new(PURCHASE_ORDER_ORCHESTRATOR, client_input=order.to_wire())
    logger.info("Started purchase_order_approval %s", instance_id)
    return client.create_check_status_response(req, instance_id)


def _threshold(request: PurchaseOrderRequest) -> float:
    if request.threshold is not None:
        return request.threshold
    return _setting(THRESHOLD_SETTING, DEFAULT_PO_THRESHOLD)


def _timeout_hours(request: PurchaseOrderRequest) -> float:
    if request.timeout_hours is not None:
        return request.timeout_hours
    hours = _setting(TIMEOUT_SETTING, DEFAULT_PO_TIMEOUT_HOURS)
    return hours if hours > 0 else DEFAULT_PO_TIMEOUT_HOURS
