"""The order routes: place, read, list and cancel orders, approve them and resolve them.

``POST /api/orders`` starts ``process_order`` under the order ID. Posting the same order while
its saga is still running starts nothing and answers 200 with that instance's status links;
posting a different body under a running order's ID answers 409, and so does posting it after
it finished (an order ID is processed once: place a new order under a new ID).

An approval is taken only while the order waits for one (stage ``awaiting_approval``), a manual
resolution only while a compensation failure waits for one (``compensation_failed``); at any
other time they answer 409 instead of being buffered for a later wait nobody has seen yet.
Only a designated approver who is not the order's customer may send either (``approvers.py``):
anyone else gets 403 before anything is raised.

Each of them carries a request ID (the ``Idempotency-Key`` header, or a new one) and answers
with what the order did with it (``decisions.py``): 200 taken, 409 refused with the reason
(another request was taken first, or the order stopped waiting: a cancel or the deadline won),
202 with ``outcomeUri`` while the order has not taken it yet. Two requests posted at once both
see the stage waiting; the order takes one and the other is refused, never dropped silently.
"""

import logging
from collections.abc import Callable

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from pydantic import BaseModel, ValidationError

from blueprints import identity
from blueprints.http_errors import ApiError, json_response, list_page_response
from blueprints.http_headers import IDEMPOTENCY_KEY
from blueprints.http_input import HandlerT, JsonBody, endpoint, path_id, read_body, read_query
from blueprints.instance_status import ACTIVE_STATUSES, refuse_foreign_instance, runtime_status
from blueprints.orders.approvers import require_decider
from blueprints.orders.decisions import DecisionKind, decision_outcome, refuse_reused_key
from blueprints.orders.orchestrator import RESOLUTION_EVENT
from blueprints.orders.read_model import list_orders
from blueprints.orders.rules import order_problems
from blueprints.orders.steps import APPROVAL_EVENT, CANCEL_EVENT
from blueprints.request_outcomes import (
    Outcome,
    await_settled,
    outcome_response,
    refusal_error,
    request_id_of,
)
from models.common import decode_json_text
from models.orders import (
    CancelOrderEvent,
    ManagerApprovalEvent,
    ManualResolutionEvent,
    OrderDecisionOutcome,
    OrderInput,
    OrderListQuery,
    OrderPage,
    OrderStatus,
)
from models.responses import CheckStatusResponse, ExistingOrder, OrderEventAccepted, OrderView

logger = logging.getLogger(__name__)

bp = df.Blueprint()

ORCHESTRATOR = "process_order"
WAIT_SETTING = "ORDERS_DECISION_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 5.0
# Once the orchestrator is at these stages the goods are (being) shipped: nothing is undone.
_SHIPPED_STAGES = frozenset({"creating_shipment", "finalizing", "completed"})


def _order_not_found(order_id: str) -> ApiError:
    return ApiError(
        404,
        "OrderNotFound",
        f"No order '{order_id}' was placed; place it with POST /api/orders.",
        [{"field": "orderId", "code": "not_found", "message": f"unknown order '{order_id}'"}],
    )


async def _order_status(
    client: df.DurableOrchestrationClient, order_id: str, show_input: bool = False
) -> DurableOrchestrationStatus | None:
    status = await client.get_status(order_id, show_input=show_input)
    # The client signals "not found" with a falsy status object; other workflows' instances
    # are not orders even when their ID looks like one.
    if not status or (status.name or "").lower() != ORCHESTRATOR:
        return None
    return status


def _stage(status: DurableOrchestrationStatus) -> str | None:
    custom = decode_json_text(status.custom_status)
    return custom.get("stage") if isinstance(custom, dict) else None


def _finished_conflict(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, order_id: str, outcome: str
) -> ApiError:
    url = client.get_client_response_links(req, order_id)["statusQueryGetUri"]
    return ApiError(
        409,
        "OrderAlreadyProcessed",
        f"Order '{order_id}' was already processed ({outcome}); an order ID is processed once. "
        f"Place a new order under a new orderId; its outcome is at GET /api/orders/{order_id}.",
        [{"field": "orderId", "code": "already_processed", "message": f"order is {outcome}"}],
        headers={"Location": url},
    )


def _different_body(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, order_id: str
) -> ApiError:
    url = client.get_client_response_links(req, order_id)["statusQueryGetUri"]
    return ApiError(
        409,
        "OrderConflict",
        f"Order '{order_id}' is being processed with a different body; an order ID names one "
        f"order. Poll GET /api/orders/{order_id}, or place this order under a new orderId.",
        [{"field": "orderId", "code": "different_body", "message": "another order has this ID"}],
        headers={"Location": url},
    )


def _same_order(order: OrderInput, status: DurableOrchestrationStatus) -> bool:
    try:
        # The Python client stores the input as a JSON string of the JSON.
        running = OrderInput.model_validate(decode_json_text(status.input_, levels=2))
    except ValidationError:
        return False
    return running == order


def _existing(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, order_id: str
) -> func.HttpResponse:
    links = client.get_client_response_links(req, order_id)
    return json_response(
        {**links, "existing": True}, status=200, headers={"Location": links["statusQueryGetUri"]}
    )


_ORDER = {"orderId": "order"}


def _order_event(model: type[BaseModel]) -> Callable[[HandlerT], HandlerT]:
    return endpoint(
        path=_ORDER,
        body=JsonBody(model),
        responses={202: OrderEventAccepted},
        errors=(403, 404, 409),
    )


@bp.route(route="orders", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(
    body=JsonBody(OrderInput),
    responses={202: CheckStatusResponse, 200: ExistingOrder},
    errors=(409,),
)
async def place_order(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Place an order: 202 with status links; 200 if it is already running; 409 if done."""
    order = read_body(req, OrderInput)
    problems = order_problems(order)
    if problems:
        raise ApiError(
            400, "ValidationFailed", "The order cannot be processed; see details.", problems
        )
    refuse_foreign_instance(
        await client.get_status(order.order_id), ORCHESTRATOR, order.order_id, "orderId"
    )
    status = await _order_status(client, order.order_id, show_input=True)
    if status is not None:
        current = runtime_status(status)
        if current in ACTIVE_STATUSES:
            if not _same_order(order, status):
                raise _different_body(req, client, order.order_id)
            return _existing(req, client, order.order_id)
        output = decode_json_text(status.output)
        outcome = output.get("status") if isinstance(output, dict) else None
        raise _finished_conflict(req, client, order.order_id, outcome or str(current))
    try:
        await client.start_new(ORCHESTRATOR, order.order_id, order.to_wire())
    except Exception as error:
        # A concurrent post of the same order ID won the start.
        if "already exists" in str(error):
            running = await _order_status(client, order.order_id, show_input=True)
            if running is not None and not _same_order(order, running):
                raise _different_body(req, client, order.order_id) from error
            return _existing(req, client, order.order_id)
        raise
    return client.create_check_status_response(req, order.order_id)


@bp.route(route="orders", methods=["GET"])
@endpoint(query=OrderListQuery, responses={200: OrderPage})
async def list_placed_orders(req: func.HttpRequest) -> func.HttpResponse:
    """List orders from the read model: ``?status=&customerId=&top=&continuationToken=``."""
    return await list_page_response(read_query(req, OrderListQuery), list_orders)


@bp.route(route="orders/{orderId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@endpoint(path=_ORDER, responses={200: OrderView}, errors=(404,))
async def read_order(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Read an order: runtime status, stage, and the result once it finished."""
    order_id = path_id(req, "orderId")
    status = await _order_status(client, order_id)
    if status is None:
        raise _order_not_found(order_id)
    current = runtime_status(status)
    body = {
        "orderId": order_id,
        "runtimeStatus": current.value if current else None,
        "stage": _stage(status),
        "customStatus": decode_json_text(status.custom_status),
        "result": decode_json_text(status.output),
        "createdTime": status.created_time.isoformat() if status.created_time else None,
        "lastUpdatedTime": (
            status.last_updated_time.isoformat() if status.last_updated_time else None
        ),
        "links": client.get_client_response_links(req, order_id),
    }
    return json_response(body)


async def _raise(
    req: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    event_name: str,
    payload: dict,
    refuse_shipped: bool = False,
) -> func.HttpResponse:
    order_id = path_id(req, "orderId")
    status = await _order_status(client, order_id)
    if status is None:
        raise _order_not_found(order_id)
    current = runtime_status(status)
    if current is not None and current.is_finished:
        output = decode_json_text(status.output)
        outcome = output.get("status") if isinstance(output, dict) else current.value
        raise _finished_conflict(req, client, order_id, str(outcome))
    if refuse_shipped and _stage(status) in _SHIPPED_STAGES:
        raise ApiError(
            409,
            "OrderAlreadyShipped",
            f"Order '{order_id}' has shipped and can no longer be cancelled; return it instead.",
            [{"field": "orderId", "code": "already_shipped", "message": "order has shipped"}],
        )
    if not await _raised(client, order_id, event_name, payload):
        # The order ended between the status check and the raise.
        ended = await _require_order(client, order_id)
        output = decode_json_text(ended.output)
        outcome = output.get("status") if isinstance(output, dict) else "finished"
        raise _finished_conflict(req, client, order_id, str(outcome))
    links = client.get_client_response_links(req, order_id)
    return json_response(
        {"orderId": order_id, "eventName": event_name, "accepted": True, **links}, status=202
    )


@bp.route(route="orders/{orderId}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
@_order_event(CancelOrderEvent)
async def cancel_order(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Ask a running order to cancel (``{"reason"}`` optional); 409 once it has shipped."""
    event = read_body(req, CancelOrderEvent)
    return await _raise(req, client, CANCEL_EVENT, event.to_wire(), refuse_shipped=True)


async def _raised(
    client: df.DurableOrchestrationClient, order_id: str, event_name: str, payload: dict
) -> bool:
    """Raise an event on an order; False when it ended meanwhile (the host answers 410).

    The Python client reports the host's 410 and 404 only in an exception's message; an order
    purged meanwhile is not found (404), not a server error.
    """
    try:
        await client.raise_event(order_id, event_name, payload)
    except Exception as error:
        if "is gone" in str(error):
            return False
        if "No instance with ID" in str(error):
            raise _order_not_found(order_id) from error
        raise
    return True


def _order_view(status: DurableOrchestrationStatus) -> OrderStatus | None:
    try:
        return OrderStatus.model_validate(decode_json_text(status.custom_status))
    except ValidationError:
        return None


def _read_outcome(
    status: DurableOrchestrationStatus, kind: DecisionKind, request_id: str
) -> OrderDecisionOutcome:
    finished = bool((current := runtime_status(status)) and current.is_finished)
    return decision_outcome(status.instance_id, kind, request_id, _order_view(status), finished)


def _outcome_uri(outcome: OrderDecisionOutcome) -> str:
    return f"/api/orders/{outcome.order_id}/{outcome.kind}s/{outcome.request_id}"


def _refusal(outcome: Outcome, uri: str) -> ApiError:
    assert isinstance(outcome, OrderDecisionOutcome)
    what = f"the {outcome.kind} of order '{outcome.order_id}'"
    # Who may decide is checked before the event is raised (approvers.py): the order itself
    # refuses a request only for when it came.
    return refusal_error(outcome, uri, what, "orderId", ("NotAllowed", "orderId"))


def _answer(outcome: OrderDecisionOutcome, read_back: bool = False) -> func.HttpResponse:
    return outcome_response(outcome, _outcome_uri(outcome), None if read_back else _refusal)


async def _require_order(
    client: df.DurableOrchestrationClient, order_id: str
) -> DurableOrchestrationStatus:
    status = await _order_status(client, order_id)
    if status is None:
        raise _order_not_found(order_id)
    return status


async def _decide(
    req: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    kind: DecisionKind,
    event_name: str,
    event: ManagerApprovalEvent | ManualResolutionEvent,
) -> func.HttpResponse:
    order_id = path_id(req, "orderId")
    request_id = request_id_of(req)
    event.request_id = request_id
    status = await _order_status(client, order_id, show_input=True)
    if status is None:
        raise _order_not_found(order_id)
    # Who may decide comes before when: a retry is checked too, with today's approvers.
    if isinstance(event, ManagerApprovalEvent):
        person, field, what = event.approver, "approver", f"approve order '{order_id}'"
    else:
        person, field = event.resolved_by, "resolvedBy"
        what = f"resolve order '{order_id}'"
    require_decider(req, decode_json_text(status.input_, levels=2), person, field, what)
    known = _read_outcome(status, kind, request_id)
    refuse_reused_key(known, event)  # the key names a decision taken with another payload: 422
    # A retry of a request the order took gets the same answer, even once the order ended;
    # so does a request that came after another one was taken.
    if known.outcome == "accepted" or known.code == "AlreadyDecided":
        return _answer(known)
    current = runtime_status(status)
    if current is not None and current.is_finished:
        output = decode_json_text(status.output)
        outcome = output.get("status") if isinstance(output, dict) else current.value
        raise _finished_conflict(req, client, order_id, str(outcome))
    if known.outcome == "refused":
        return _answer(known)
    # An order that ended between the status check and the raise: the read below says so.
    await _raised(client, order_id, event_name, event.to_wire())
    logger.info("Raised %s on order %s (request %s)", event_name, order_id, request_id)

    async def read() -> OrderDecisionOutcome:
        return _read_outcome(await _require_order(client, order_id), kind, request_id)

    settled = await await_settled(read, WAIT_SETTING, DEFAULT_WAIT_SECONDS)
    refuse_reused_key(settled, event)  # another request under this key was taken meanwhile
    return _answer(settled)


# 200 with the outcome, or 202 while the order has not taken the request yet.
_OUTCOME = {200: OrderDecisionOutcome, 202: OrderDecisionOutcome}


def _order_decision(model: type[BaseModel]) -> Callable[[HandlerT], HandlerT]:
    return endpoint(
        path=_ORDER,
        headers=(IDEMPOTENCY_KEY,),
        body=JsonBody(model),
        responses=_OUTCOME,
        errors=(403, 404, 409, 422),
    )


@bp.route(route="orders/{orderId}/approval", methods=["POST"])
@bp.durable_client_input(client_name="client")
@_order_decision(ManagerApprovalEvent)
async def approve_order(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Decide a large order that waits: 200 taken, 409 refused (with why), 202 not taken yet."""
    event = identity.bind_identities(req, read_body(req, ManagerApprovalEvent))
    return await _decide(req, client, "approval", APPROVAL_EVENT, event)


@bp.route(route="orders/{orderId}/resolution", methods=["POST"])
@bp.durable_client_input(client_name="client")
@_order_decision(ManualResolutionEvent)
async def resolve_order(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Settle a failed compensation by hand: 200 taken, 409 refused, 202 not taken yet."""
    event = identity.bind_identities(req, read_body(req, ManualResolutionEvent))
    return await _decide(req, client, "resolution", RESOLUTION_EVENT, event)


_read_back = endpoint(
    path={**_ORDER, "requestId": "idempotency"}, responses=_OUTCOME, errors=(404,)
)


@bp.route(route="orders/{orderId}/approvals/{requestId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@_read_back
async def get_order_approval_outcome(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Read what became of an approval request: accepted, refused (with why) or pending."""
    status = await _require_order(client, path_id(req, "orderId"))
    return _answer(_read_outcome(status, "approval", path_id(req, "requestId")), read_back=True)


@bp.route(route="orders/{orderId}/resolutions/{requestId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@_read_back
async def get_order_resolution_outcome(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Read what became of a resolution request: accepted, refused (with why) or pending."""
    status = await _require_order(client, path_id(req, "orderId"))
    return _answer(_read_outcome(status, "resolution", path_id(req, "requestId")), read_back=True)
