"""``POST /api/inventory/{sku}`` (restock) and ``GET /api/inventory/{sku}`` (read the stock)."""

from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func
from pydantic import TypeAdapter, ValidationError

from blueprints.http_errors import (
    ApiError,
    json_errors,
    json_response,
    read_json_body,
    validate_model,
)
from blueprints.inventory.stock import expire_due
from models.common import decode_json_text
from models.inventory import INVENTORY_ENTITY, InventoryState, InventoryView, RestockRequest, Sku

bp = df.Blueprint()

_SKU = TypeAdapter(Sku)


def _sku(req: func.HttpRequest) -> str:
    sku = req.route_params["sku"]
    try:
        return _SKU.validate_python(sku)
    except ValidationError as error:
        raise ApiError(
            400,
            "ValidationFailed",
            "A SKU is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit.",
            [{"field": "sku", "code": "invalid_sku", "message": f"'{sku}' is not a SKU"}],
        ) from error


@bp.route(route="inventory/{sku}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@json_errors
async def restock(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Add stock to a SKU (an ``add`` signal to its entity); 202, read it back with GET."""
    sku = _sku(req)
    request = validate_model(RestockRequest, read_json_body(req))
    await client.signal_entity(df.EntityId(INVENTORY_ENTITY, sku), "add", request.to_wire())
    return json_response(
        {"sku": sku, "operation": "add", "quantity": request.quantity, "accepted": True},
        status=202,
        headers={"Location": f"/api/inventory/{sku}"},
    )


@bp.route(route="inventory/{sku}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@json_errors
async def read_stock(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Read a SKU's available and reserved stock and its open reservations."""
    sku = _sku(req)
    response = await client.read_entity_state(df.EntityId(INVENTORY_ENTITY, sku))
    if not response.entity_exists:
        raise ApiError(
            404,
            "SkuNotFound",
            f"No stock was ever recorded for SKU '{sku}'; add some with POST /api/inventory/{sku}.",
            [{"field": "sku", "code": "not_found", "message": f"unknown SKU '{sku}'"}],
        )
    state = InventoryState.model_validate(decode_json_text(response.entity_state, levels=2))
    # Shown as the entity will see it at its next operation: expired holds are available.
    expire_due(state, datetime.now(UTC))
    view = InventoryView(
        sku=sku,
        available=state.available,
        reserved=state.reserved,
        reservations=state.reservations,
        expires_at=state.expires,
    )
    return json_response(view.to_wire())
