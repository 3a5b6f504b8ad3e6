"""The order routes: place, read, list and cancel orders, approve them and resolve them.

``POST /api/orders`` starts ``process_order`` under the order ID. Posting the same order while
its saga is still running starts nothing and answers 200 with that instance's status links;
posting a different body under a running order's ID answers 409, and so does posting it after
it finished (an order ID is processed once: place a new order under a new ID).

An approval is taken only while the order waits for one (stage ``awaiting_approval``), a manual
resolution only while a compensation failure waits for one (``compensation_failed``); at any
other time they answer 409 instead of being buffered for a later wait nobody has seen yet.
"""

from collections.abc import Callable

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from pydantic import BaseModel, ValidationError

from blueprints import identity
from blueprints.http_errors import ApiError, json_response, list_page_response
from blueprints.http_input import HandlerT, JsonBody, endpoint, path_id, read_body, read_query
from blueprints.instance_status import ACTIVE_STATUSES, refuse_foreign_instance, runtime_status
from blueprints.orders.orchestrator import RESOLUTION_EVENT
from blueprints.orders.read_model import list_orders
from blueprints.orders.rules import order_problems
from blueprints.orders.steps import APPROVAL_EVENT, CANCEL_EVENT
from models.common import decode_json_text
from models.orders import (
    CancelOrderEvent,
    ManagerApprovalEvent,
    ManualResolutionEvent,
    OrderInput,
    OrderListQuery,
    OrderPage,
)
from models.responses import CheckStatusResponse, ExistingOrder, OrderEventAccepted, OrderView

bp = df.Blueprint()

ORCHESTRATOR = "process_order"
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


def _not_waiting(order_id: str, what: str, stage: str | None, field: str) -> ApiError:
    return ApiError(
        409,
        f"NotAwaiting{what.title()}",
        f"Order '{order_id}' is not waiting for a {what} (stage: {stage or 'unknown'}); "
        "it is taken only while the order waits for one.",
        [{"field": field, "code": "not_waiting", "message": f"stage is {stage}", "stage": stage}],
    )


async def _raise(
    req: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    event_name: str,
    payload: dict,
    refuse_shipped: bool = False,
    only_at: tuple[str, str] | None = None,
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
    stage = _stage(status)
    if only_at is not None and stage != only_at[0]:
        raise _not_waiting(order_id, only_at[1], stage, "orderId")
    if refuse_shipped and stage in _SHIPPED_STAGES:
        raise ApiError(
            409,
            "OrderAlreadyShipped",
            f"Order '{order_id}' has shipped and can no longer be cancelled; return it instead.",
            [{"field": "orderId", "code": "already_shipped", "message": "order has shipped"}],
        )
    try:
        await client.raise_event(order_id, event_name, payload)
    except Exception as error:
        # The order may end between the check and the raise (the host answers 410, which the
        # client reports only in its message): the same 409 as an order found finished.
        if "is gone" not in str(error):
            raise
        raise _finished_conflict(req, client, order_id, "finished") from error
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


@bp.route(route="orders/{orderId}/approval", methods=["POST"])
@bp.durable_client_input(client_name="client")
@_order_event(ManagerApprovalEvent)
async def approve_order(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Give a manager's decision on a large order: ``{"approved", "approver", "comment"}``."""
    event = identity.bind_identities(req, read_body(req, ManagerApprovalEvent))
    return await _raise(
        req, client, APPROVAL_EVENT, event.to_wire(), only_at=("awaiting_approval", "approval")
    )


@bp.route(route="orders/{orderId}/resolution", methods=["POST"])
@bp.durable_client_input(client_name="client")
@_order_event(ManualResolutionEvent)
async def resolve_order(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Record that a person settled a failed compensation: ``{"resolvedBy", "note"}``."""
    event = identity.bind_identities(req, read_body(req, ManualResolutionEvent))
    return await _raise(
        req,
        client,
        RESOLUTION_EVENT,
        event.to_wire(),
        only_at=("compensation_failed", "resolution"),
    )
