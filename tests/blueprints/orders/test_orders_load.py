"""Many orders at once against a limited stock: no oversell, and the ledger balances."""

import asyncio

import pytest
from orders_harness import make_order, order_host, seed, stock_of

from blueprints.app_storage import table
from blueprints.orders.providers import PAYMENT_LEDGER, SHIPMENTS

pytestmark = pytest.mark.usefixtures("app_storage")

ORDERS = 200
STOCK = 50


async def test_200_orders_at_once_never_oversell_and_every_charge_ships() -> None:
    async with order_host() as host:
        await seed(host, SKU_HOT=STOCK)
        ids = [f"load-{number:03d}" for number in range(ORDERS)]
        await asyncio.gather(
            *(host.start("process_order", make_order(i, [("SKU-HOT", 1, 3.0)]), i) for i in ids)
        )
        statuses = await asyncio.gather(*(host.wait(i, timeout=120) for i in ids))
        stock = await stock_of(host, "SKU-HOT")

    outcomes = [status["output"]["status"] for status in statuses]
    assert outcomes.count("completed") == STOCK
    assert outcomes.count("failed") == ORDERS - STOCK
    failures = {
        s["output"]["failureReason"].split(":")[0] for s in statuses if s["output"]["failureReason"]
    }
    assert failures == {"out_of_stock"}
    assert (stock["available"], stock["reserved"], stock["reservations"]) == (0, 0, {})

    charges = list(table(PAYMENT_LEDGER).query_entities("RowKey eq 'charge'"))
    refunds = list(table(PAYMENT_LEDGER).query_entities("RowKey eq 'refund'"))
    shipped = {
        row["PartitionKey"] for row in table(SHIPMENTS).query_entities("RowKey eq 'shipment'")
    }
    charged = {row["PartitionKey"] for row in charges if row["Status"] == "succeeded"}
    assert len(charges) == STOCK and refunds == []
    assert sum(row["AmountCents"] for row in charges) == STOCK * 300
    assert charged == shipped
