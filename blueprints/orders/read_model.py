"""The ``Orders`` read model: one row per order, so orders can be listed by status.

The durable client's instance listing cannot filter on a business status and stops at one page
(workflow-features §0.5), so the orchestrator records each transition here through the
``record_order`` activity. Layout: PartitionKey ``order``, RowKey the order ID; ``Status`` is
``processing``, ``awaiting_approval``, ``compensation_failed`` (needs attention), ``completed``,
``failed`` or ``cancelled``.

A row is only replaced by a transition at least as new (``UpdatedAt`` is the orchestration's
deterministic time), so a late re-run of an older ``record_order`` cannot move it back.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from blueprints.app_storage import query_page, safe_key, table
from models.orders import OrderListQuery, OrderPage, OrderSummary, RecordOrderInput

__all__ = ["ORDERS_TABLE", "list_orders", "record_order"]

ORDERS_TABLE = "Orders"
_PARTITION = "order"


def record_order(request: RecordOrderInput) -> bool:
    """Upsert an order's row, unless a newer transition is already recorded.

    Parameters
    ----------
    request : RecordOrderInput
        The transition.

    Returns
    -------
    bool
        True when written, False when the stored row was newer.
    """
    orders = table(ORDERS_TABLE)
    key = safe_key(request.order_id)
    updated_at = request.updated_at
    if updated_at.tzinfo is None:  # the orchestration clock may be naive; it is UTC
        updated_at = updated_at.replace(tzinfo=UTC)
    try:
        current = orders.get_entity(_PARTITION, key)
        if current["UpdatedAt"] > updated_at:
            return False
    except ResourceNotFoundError:
        pass
    orders.upsert_entity(
        {
            "PartitionKey": _PARTITION,
            "RowKey": key,
            "OrderId": request.order_id,
            "CustomerId": request.customer_id,
            "Status": request.status,
            "Stage": request.stage,
            "Total": request.total,
            "FailureReason": request.failure_reason or "",
            "NeedsAttention": request.status == "compensation_failed",
            "UpdatedAt": updated_at,
        }
    )
    return True


def _summary(entity: dict[str, Any]) -> OrderSummary:
    return OrderSummary(
        order_id=entity["OrderId"],
        customer_id=entity["CustomerId"],
        status=entity["Status"],
        stage=entity["Stage"],
        total=entity["Total"],
        failure_reason=entity.get("FailureReason") or None,
        needs_attention=bool(entity.get("NeedsAttention")),
        updated_at=entity["UpdatedAt"],
    )


def list_orders(query: OrderListQuery) -> OrderPage:
    """Return one page of orders, by order ID, filtered by status and customer.

    Parameters
    ----------
    query : OrderListQuery
        Filters, page size and continuation token.

    Returns
    -------
    OrderPage
        The page and the next page's token.

    Raises
    ------
    ValueError
        When the continuation token is not one this API produced.
    """
    parameters: dict[str, Any] = {"pk": _PARTITION}
    text = "PartitionKey eq @pk"
    if query.status:
        parameters["status"] = query.status
        text += " and Status eq @status"
    if query.customer_id:
        parameters["customer"] = query.customer_id
        text += " and CustomerId eq @customer"
    page, token = query_page(
        table(ORDERS_TABLE), text, parameters, query.top, query.continuation_token
    )
    return OrderPage(orders=[_summary(entity) for entity in page], continuation_token=token)
