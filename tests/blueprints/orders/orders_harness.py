"""Shared helpers of the order-saga tests: the app under test, orders, stock and ledger reads.

The app is the order blueprints plus the notification outbox, indexed on its own so these tests
do not depend on the other workflows' modules; the activities write to the test's Azurite.
"""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from blueprints.app_storage import safe_key, table
from blueprints.inventory import entity as inventory_entity
from blueprints.inventory import http as inventory_http
from blueprints.notifications import activities as notification_activities
from blueprints.notifications import http as notification_http
from blueprints.orders import activities, http, orchestrator, tracking
from blueprints.orders.providers import PAYMENT_LEDGER, SHIPMENTS
from blueprints.saga import orchestrator as saga_orchestrator
from devhost.app.loader import FunctionIndex, index_app
from devhost.testing import DurableTestHost

# Small, distinct delays so each backoff wait can be recognised on the virtual clock.
FAST_SETTINGS: dict[str, Any] = {
    "paymentRetry": {"firstDelaySeconds": 2, "factor": 2, "maxDelaySeconds": 5, "maxAttempts": 5},
    "compensationRetry": {"firstDelaySeconds": 1, "factor": 2, "maxAttempts": 3},
}


# 1200: at or above the default approval threshold, so the order waits for an approval.
BIG = [("SKU-A", 2, 600.0)]


def at_stage(stage: str) -> Any:
    """A ``wait_for_custom_status`` check: the order's custom status shows ``stage``."""
    return lambda custom: isinstance(custom, dict) and custom.get("stage") == stage


def order_index() -> FunctionIndex:
    """The indexed app: inventory, saga, orders and the notification outbox."""
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    for module in (
        inventory_entity,
        inventory_http,
        saga_orchestrator,
        orchestrator,
        tracking,
        activities,
        http,
        notification_activities,
        notification_http,
    ):
        app.register_functions(module.bp)
    return index_app(app)


def order_host(**options: Any) -> DurableTestHost:
    """A test host serving the order app."""
    return DurableTestHost(index=order_index(), **options)


def make_order(
    order_id: str,
    items: list[tuple[str, int, float]] | None = None,
    token: str = "tok_visa",
    zip_code: str = "98101",
    street: str = "1 Main St",
    **settings: Any,
) -> dict[str, Any]:
    """An order as posted: ``items`` are (sku, quantity, unitPrice)."""
    lines = items if items is not None else [("SKU-A", 2, 10.0)]
    return {
        "orderId": order_id,
        "customerId": "cust-1",
        "customerEmail": "ana@example.com",
        "items": [
            {
                "productId": f"prod-{sku}",
                "sku": sku,
                "name": f"Item {sku}",
                "quantity": quantity,
                "unitPrice": price,
            }
            for sku, quantity, price in lines
        ],
        "shippingAddress": {
            "street": street,
            "city": "Seattle",
            "state": "WA",
            "zipCode": zip_code,
            "country": "US",
        },
        "paymentDetails": {"method": "credit_card", "token": token},
        "settings": {**FAST_SETTINGS, **settings},
    }


def refund_fails(order_id: str) -> dict[str, Any]:
    """An order whose shipment fails and whose refund fails too: it stops at
    ``compensation_failed`` and waits for an operator's resolution."""
    return make_order(order_id, token="tok_refund_fails", street="9 Undeliverable Rd")


async def place(host: DurableTestHost, client: Any, order: dict[str, Any], stage: str) -> None:
    """Post ``order`` and wait until it reaches ``stage``."""
    await client.post("/api/orders", json=order)
    await host.wait_for_custom_status(order["orderId"], at_stage(stage))


async def seed(host: DurableTestHost, **stock: int) -> None:
    """Add stock per SKU (``SKU_A=5`` seeds ``SKU-A``) and wait until it is applied."""
    for name, quantity in stock.items():
        # Encoded twice, as the Python client sends an operation's input.
        payload = json.dumps(json.dumps({"quantity": quantity}))
        await host.engine.signal_entity("inventory", name.replace("_", "-"), "add", payload)
    await host.idle()


async def stock_of(host: DurableTestHost, sku: str) -> dict[str, Any]:
    """The inventory entity's state of one SKU."""
    _, state = await host.engine.read_entity("inventory", sku)
    return dict(json.loads(state or "{}"))


def ledger(order_id: str) -> dict[str, dict[str, Any]]:
    """The order's payment ledger rows by step (``charge``, ``refund``)."""
    rows = table(PAYMENT_LEDGER).query_entities(
        "PartitionKey eq @pk", parameters={"pk": safe_key(order_id)}
    )
    return {row["RowKey"]: dict(row) for row in rows}


def shipments(order_id: str) -> dict[str, dict[str, Any]]:
    """The order's shipment rows by kind (``shipment``, ``tracking``)."""
    rows = table(SHIPMENTS).query_entities(
        "PartitionKey eq @pk", parameters={"pk": safe_key(order_id)}
    )
    return {row["RowKey"]: dict(row) for row in rows}


def compensated_steps(result: dict[str, Any]) -> list[str]:
    """The steps the saga undid, in the order it undid them."""
    return [record["step"] for record in result["compensations"]]
