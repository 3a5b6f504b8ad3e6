"""HTTP routes of purchase orders: place one, decide one, read a decision's outcome.

The instance ID is the ``orderId``: a repost of a running order with the same body answers 200
with its links, with a different body 409, and once it finished 409 (as ``POST /api/orders``).
``POST /api/purchase-orders/{orderId}/decision`` decides and answers with the outcome the
orchestrator recorded (``purchase_order_rules.decision_outcome``); the generic events endpoint
still raises ``approval_received`` for clients of the pattern.

``POST /api/purchase-orders`` reads the defaults from the app settings
``PURCHASE_ORDER_APPROVAL_THRESHOLD``, ``PURCHASE_ORDER_APPROVAL_TIMEOUT_HOURS`` and
``PURCHASE_ORDER_APPROVERS`` (a body may override them) and passes them in the input, so a
replay never depends on a setting that changed since.
"""

import logging
import os
import uuid

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from pydantic import ValidationError

from blueprints import identity
from blueprints.approvals import purchase_order_rules as rules
from blueprints.async_api import is_finished
from blueprints.http_errors import ApiError, json_response
from blueprints.http_headers import IDEMPOTENCY_KEY
from blueprints.http_input import JsonBody, endpoint, path_id, read_body
from blueprints.instance_status import ACTIVE_STATUSES, runtime_status
from blueprints.request_outcomes import (
    Outcome,
    await_settled,
    outcome_response,
    refusal_error,
    request_id_of,
)
from models.approvals import (
    DEFAULT_PO_THRESHOLD,
    DEFAULT_PO_TIMEOUT_HOURS,
    PURCHASE_ORDER_EVENT,
    PURCHASE_ORDER_ORCHESTRATOR,
    PurchaseOrderApprovalEvent,
    PurchaseOrderDecisionOutcome,
    PurchaseOrderDecisionRequest,
    PurchaseOrderInput,
    PurchaseOrderRequest,
    PurchaseOrderStatus,
)
from models.common import decode_json_text
from models.responses import CheckStatusResponse, ExistingOrder

logger = logging.getLogger(__name__)

bp = df.Blueprint()

# 200 with the outcome, or 202 while the order has not taken the decision yet.
_OUTCOME = {200: PurchaseOrderDecisionOutcome, 202: PurchaseOrderDecisionOutcome}

THRESHOLD_SETTING = "PURCHASE_ORDER_APPROVAL_THRESHOLD"
TIMEOUT_SETTING = "PURCHASE_ORDER_APPROVAL_TIMEOUT_HOURS"
APPROVERS_SETTING = "PURCHASE_ORDER_APPROVERS"
WAIT_SETTING = "PURCHASE_ORDER_DECISION_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 5.0


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


def _approvers(request: PurchaseOrderRequest, threshold: float) -> list[str]:
    if request.approver_email is not None:
        return [request.approver_email]
    approvers = rules.parse_approvers(os.environ.get(APPROVERS_SETTING, ""))
    if not approvers and request.amount >= threshold:
        raise ApiError(
            400,
            "ValidationFailed",
            f"An order of {request.amount:g} needs an approver (the threshold is {threshold:g}): "
            f"name one in approverEmail, or set the app setting {APPROVERS_SETTING}.",
            [
                {
                    "field": "approverEmail",
                    "code": "missing",
                    "message": "no approver for this order",
                }
            ],
        )
    return approvers


def _not_a_purchase_order(order_id: str) -> ApiError:
    return ApiError(
        404,
        "PurchaseOrderNotFound",
        f"No purchase order '{order_id}'; place it with POST /api/purchase-orders.",
        [{"field": "orderId", "code": "not_found", "message": f"unknown order '{order_id}'"}],
    )


async def _purchase_order(
    client: df.DurableOrchestrationClient, order_id: str, show_input: bool = False
) -> DurableOrchestrationStatus | None:
    status = await client.get_status(order_id, show_input=show_input)
    if not status or not status.name:
        return None
    return status


def _links_response(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, order_id: str
) -> func.HttpResponse:
    links = client.get_client_response_links(req, order_id)
    body = {**links, "orderId": order_id, "existing": True}
    return json_response(body, status=200, headers={"Location": links["statusQueryGetUri"]})


def _repost(
    req: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    request: PurchaseOrderRequest,
    status: DurableOrchestrationStatus,
) -> func.HttpResponse:
    order_id = status.instance_id
    if status.name != PURCHASE_ORDER_ORCHESTRATOR:
        raise ApiError(
            409,
            "OrderIdTaken",
            f"'{order_id}' is the ID of another workflow's instance; use another orderId.",
            [{"field": "orderId", "code": "taken", "message": "used by another instance"}],
        )
    url = client.get_client_response_links(req, order_id)["statusQueryGetUri"]
    current = runtime_status(status)
    if current not in ACTIVE_STATUSES:
        output = decode_json_text(status.output)
        raise ApiError(
            409,
            "OrderAlreadyProcessed",
            f"Purchase order '{order_id}' was already processed ({output or current}); an order "
            "ID is processed once. Place a new order under a new orderId.",
            [{"field": "orderId", "code": "already_processed", "message": "already processed"}],
            headers={"Location": url},
        )
    try:
        # The Python client stores the input as a JSON string of the JSON.
        running = PurchaseOrderInput.model_validate(decode_json_text(status.input_, levels=2))
    except ValidationError:
        running = None
    if running is None or not rules.same_order(request, running):
        raise ApiError(
            409,
            "OrderConflict",
            f"Purchase order '{order_id}' is running with a different body; an order ID names "
            "one order. Poll it, or place this one under a new orderId.",
            [{"field": "orderId", "code": "different_body", "message": "another order"}],
            headers={"Location": url},
        )
    return _links_response(req, client, order_id)


@bp.route(route="purchase-orders", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(
    body=JsonBody(PurchaseOrderRequest),
    responses={202: CheckStatusResponse, 200: ExistingOrder},
    errors=(403, 409),
)
async def start_purchase_order(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start a purchase-order approval under its orderId (202); a repost answers as orders do."""
    request = read_body(req, PurchaseOrderRequest)
    identity.resolve_actor(req, request.requester_email, "requesterEmail")
    threshold = _threshold(request)
    order_id = request.order_id or uuid.uuid4().hex
    order = PurchaseOrderInput(
        order_id=order_id,
        amount=request.amount,
        description=request.description,
        requester_email=request.requester_email,
        approver_email=request.approver_email,
        approvers=_approvers(request, threshold),
        threshold=threshold,
        timeout_hours=_timeout_hours(request),
    )
    if request.order_id is not None:
        existing = await _purchase_order(client, order_id, show_input=True)
        if existing is not None:
            return _repost(req, client, request, existing)
    try:
        await client.start_new(PURCHASE_ORDER_ORCHESTRATOR, order_id, order.to_wire())
    except Exception as error:
        # A concurrent post of the same order won the start.
        found = await _purchase_order(client, order_id, show_input=True)
        if "already exists" in str(error) and found is not None:
            return _repost(req, client, request, found)
        raise
    logger.info("Started purchase_order_approval %s", order_id)
    return client.create_check_status_response(req, order_id)


def _status_of(status: DurableOrchestrationStatus) -> PurchaseOrderStatus | None:
    try:
        return PurchaseOrderStatus.model_validate(decode_json_text(status.custom_status))
    except ValidationError:
        return None


def _read_outcome(
    status: DurableOrchestrationStatus, request_id: str
) -> PurchaseOrderDecisionOutcome:
    return rules.decision_outcome(
        status.instance_id, request_id, _status_of(status), is_finished(status)
    )


def _outcome_uri(order_id: str, request_id: str) -> str:
    return f"/api/purchase-orders/{order_id}/decisions/{request_id}"


def _refusal(outcome: Outcome, uri: str) -> ApiError:
    assert isinstance(outcome, PurchaseOrderDecisionOutcome)
    what = f"the decision on purchase order '{outcome.order_id}'"
    return refusal_error(outcome, uri, what, "orderId", ("NotTheApprover", "approver"))


def _answer(outcome: PurchaseOrderDecisionOutcome, read_back: bool = False) -> func.HttpResponse:
    uri = _outcome_uri(outcome.order_id, outcome.request_id)
    return outcome_response(outcome, uri, None if read_back else _refusal)


async def _require_purchase_order(
    client: df.DurableOrchestrationClient, order_id: str
) -> DurableOrchestrationStatus:
    status = await _purchase_order(client, order_id)
    if status is None or status.name != PURCHASE_ORDER_ORCHESTRATOR:
        raise _not_a_purchase_order(order_id)
    return status


@bp.route(route="purchase-orders/{orderId}/decision", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(
    path={"orderId": "request"},
    headers=(IDEMPOTENCY_KEY,),
    body=JsonBody(PurchaseOrderDecisionRequest),
    responses=_OUTCOME,
    errors=(403, 404, 409, 422),
)
async def decide_purchase_order(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Approve or reject an order that waits: 200 applied, 403/409 refused, 202 not taken yet."""
    order_id = path_id(req, "orderId")
    body = read_body(req, PurchaseOrderDecisionRequest)
    # Who decides is the signed-in caller (WORKFLOW_AUTH=easyauth); the body may only name them.
    identity.resolve_actor(req, body.approver, "approver")
    request_id = request_id_of(req)
    status = await _require_purchase_order(client, order_id)
    known = _read_outcome(status, request_id)
    rules.refuse_reused_key(known, body)  # the key names a decision with another payload: 422
    if known.outcome != "pending":
        return _answer(known)
    current = _status_of(status)
    approvers = current.approvers if current else []
    if approvers and body.approver not in approvers:
        raise ApiError(
            403,
            "NotTheApprover",
            f"{body.approver} may not decide purchase order '{order_id}': only "
            f"{', '.join(approvers)} may.",
            [{"field": "approver", "code": "forbidden", "message": "not the order's approver"}],
        )
    event = PurchaseOrderApprovalEvent(
        approver=body.approver,
        approved=body.approved,
        comments=body.comments,
        request_id=request_id,
    )
    try:
        await client.raise_event(order_id, PURCHASE_ORDER_EVENT, event.to_wire())
    except Exception as error:
        if "is gone" in str(error):
            ended = _read_outcome(await _require_purchase_order(client, order_id), request_id)
            rules.refuse_reused_key(ended, body)
            return _answer(ended)
        if "No instance with ID" in str(error):  # purged meanwhile (the host answers 404)
            raise _not_a_purchase_order(order_id) from error
        raise

    async def read() -> PurchaseOrderDecisionOutcome:
        return _read_outcome(await _require_purchase_order(client, order_id), request_id)

    settled = await await_settled(read, WAIT_SETTING, DEFAULT_WAIT_SECONDS)
    rules.refuse_reused_key(settled, body)  # another request under this key was taken meanwhile
    return _answer(settled)


@bp.route(route="purchase-orders/{orderId}/decisions/{requestId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@endpoint(
    path={"orderId": "request", "requestId": "idempotency"},
    responses=_OUTCOME,
    errors=(403, 404),
)
async def get_purchase_order_decision(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Read what became of a decision request: accepted, refused (with why) or pending."""
    order_id = path_id(req, "orderId")
    status = await _purchase_order(client, order_id, show_input=True)
    if status is None or status.name != PURCHASE_ORDER_ORCHESTRATOR:
        raise _not_a_purchase_order(order_id)
    # An outcome names who decided and why: shown to the order's people only, as a chain's is.
    identity.require_one_of(req, _people(status), f"purchase order '{order_id}'", "orderId")
    return _answer(_read_outcome(status, path_id(req, "requestId")), read_back=True)


def _people(status: DurableOrchestrationStatus) -> list[str]:
    try:
        order = PurchaseOrderInput.model_validate(decode_json_text(status.input_, levels=2))
    except ValidationError:
        return []
    return [person for person in [order.requester_email, *order.deciders] if person]


def _threshold(request: PurchaseOrderRequest) -> float:
    if request.threshold is not None:
        return request.threshold
    return _setting(THRESHOLD_SETTING, DEFAULT_PO_THRESHOLD)


def _timeout_hours(request: PurchaseOrderRequest) -> float:
    if request.timeout_hours is not None:
        return request.timeout_hours
    hours = _setting(TIMEOUT_SETTING, DEFAULT_PO_TIMEOUT_HOURS)
    return hours if hours > 0 else DEFAULT_PO_TIMEOUT_HOURS
