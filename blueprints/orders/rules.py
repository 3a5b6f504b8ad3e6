"""The order's business rules as plain functions: validation, totals, reservations, messages.

No I/O and no clock: the orchestrator calls these directly (they are deterministic), and so does
``POST /api/orders`` to refuse an invalid order before any saga starts.
"""

from __future__ import annotations

from models.notifications import SendNotificationInput
from models.orders import OrderInput, OrderRequest

__all__ = [
    "OPERATIONS_RECIPIENT",
    "notification",
    "order_problems",
    "order_total",
    "quantities_by_sku",
    "reservation_id",
]

# Who is told when an order needs a person (compensation failed).
OPERATIONS_RECIPIENT = "order-operations"


def order_problems(order: OrderRequest) -> list[dict[str, str]]:
    """Return what makes an order unprocessable (the validate step).

    Parameters
    ----------
    order : OrderRequest
        The order.

    Returns
    -------
    list[dict[str, str]]
        One ``{field, code, message}`` per problem; empty when the order is valid.
    """
    problems: list[dict[str, str]] = []
    if not order.items:
        problems.append({"field": "items", "code": "no_items", "message": "the order has no items"})
    for index, item in enumerate(order.items):
        if item.quantity <= 0:
            problems.append(
                {
                    "field": f"items[{index}].quantity",
                    "code": "not_positive",
                    "message": f"quantity of '{item.sku}' must be positive, got {item.quantity}",
                }
            )
        if item.unit_price <= 0:
            problems.append(
                {
                    "field": f"items[{index}].unitPrice",
                    "code": "not_positive",
                    "message": f"price of '{item.sku}' must be positive, got {item.unit_price}",
                }
            )
    return problems


def order_total(order: OrderRequest) -> float:
    """Return the order's total, rounded to cents."""
    cents = sum(round(item.quantity * item.unit_price * 100) for item in order.items)
    return cents / 100


def quantities_by_sku(order: OrderRequest) -> list[tuple[str, int]]:
    """Return the quantity to reserve per SKU, in the order SKUs first appear.

    Two lines of one SKU make one reservation, so the entity sees one ID per (order, SKU).
    """
    totals: dict[str, int] = {}
    for item in order.items:
        totals[item.sku] = totals.get(item.sku, 0) + item.quantity
    return list(totals.items())


def reservation_id(order_id: str, sku: str) -> str:
    """Return the reservation ID (the entity's idempotency key) of one SKU of an order."""
    return f"{order_id}:{sku}"


def notification(
    order: OrderInput, purpose: str, subject: str, body: str, recipient: str | None = None
) -> SendNotificationInput:
    """Return the outbox entry of one message about an order (ID ``{orderId}:{purpose}``).

    Parameters
    ----------
    order : OrderInput
        The order.
    purpose : str
        The message's purpose, also its category (``order_confirmation``, ``order_failed``...).
    subject, body : str
        The message.
    recipient : str | None
        Defaults to the customer's email.
    """
    return SendNotificationInput(
        notification_id=f"{order.order_id}:{purpose}",
        recipient=recipient or order.customer_email,
        category=purpose,
        subject=subject,
        body=body,
        link=f"/api/orders/{order.order_id}",
        workflow="process_order",
        instance_id=order.order_id,
    )
