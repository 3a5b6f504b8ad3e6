"""The order saga on the real local host with Azurite, killed with SIGKILL mid-saga.

After the restart every order finishes and the books balance: every charge is shipped or
refunded, every reservation is committed or released, and nothing is charged twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from e2e_client import request_json

from blueprints.app_storage import table
from blueprints.orders.providers import PAYMENT_LEDGER, SHIPMENTS

PROJECT = Path(__file__).resolve().parents[2]
# Run once with a connection string and once identity-based (a token, no account key).
pytestmark = [
    pytest.mark.azurite,
    pytest.mark.usefixtures("app_storage"),
    pytest.mark.both_storage_paths,
]

# Real seconds here: short waits so the kill lands while several sagas are mid-way.
SETTINGS = {"paymentRetry": {"firstDelaySeconds": 0.4, "factor": 2, "maxAttempts": 5}}
TOKENS = ["tok_visa", "tok_transient_2", "tok_decline", "tok_visa", "tok_transient_3"]


def _order(number: int) -> dict[str, Any]:
    return {
        "orderId": f"e2e-{number:02d}",
        "customerId": "cust-e2e",
        "customerEmail": "e2e@example.com",
        "items": [
            {"productId": "p1", "sku": "SKU-E2E", "name": "Widget", "quantity": 2, "unitPrice": 5}
        ],
        "shippingAddress": {
            "street": "1 Main St",
            "city": "Seattle",
            "state": "WA",
            "zipCode": "00000" if number % 7 == 6 else "98101",
            "country": "US",
        },
        "paymentDetails": {"method": "credit_card", "token": TOKENS[number % len(TOKENS)]},
        "settings": SETTINGS,
    }


def _finished(base: str, order_id: str) -> dict[str, Any] | None:
    status, body = request_json("GET", f"{base}/api/orders/{order_id}")
    if status == 200 and body["runtimeStatus"] in ("Completed", "Failed", "Terminated"):
        return dict(body)
    return None


def test_orders_survive_a_kill_mid_saga_and_the_books_balance(host_factory, app_storage) -> None:
    host = host_factory(PROJECT, WORKFLOW_STORAGE_PREFIX=app_storage)
    base = host.base_url
    assert request_json("POST", f"{base}/api/inventory/SKU-E2E", {"quantity": 30})[0] == 202
    count = 14
    for number in range(count):
        status, _ = request_json("POST", f"{base}/api/orders", _order(number))
        assert status == 202
    time.sleep(0.6)  # some sagas are waiting on backoff timers, some mid-step
    unfinished = [n for n in range(count) if not _finished(base, f"e2e-{n:02d}")]
    host.kill()
    assert unfinished, "the kill should land while sagas are still running"
    host.start()

    deadline = time.monotonic() + 60
    results: dict[str, dict[str, Any]] = {}
    while len(results) < count and time.monotonic() < deadline:
        for number in range(count):
            order_id = f"e2e-{number:02d}"
            if order_id not in results and (done := _finished(base, order_id)):
                results[order_id] = done
        time.sleep(0.2)
    assert len(results) == count, (
        f"unfinished: {sorted(set(results) ^ {f'e2e-{n:02d}' for n in range(count)})}"
    )
    assert {r["runtimeStatus"] for r in results.values()} == {"Completed"}

    outcomes = {order_id: r["result"]["status"] for order_id, r in results.items()}
    completed = {order_id for order_id, outcome in outcomes.items() if outcome == "completed"}
    assert completed and len(completed) < count  # declines and undeliverables failed

    status, stock = request_json("GET", f"{base}/api/inventory/SKU-E2E")
    assert status == 200
    assert stock["reserved"] == 0 and stock["reservations"] == {}
    assert stock["available"] == 30 - 2 * len(completed)

    rows = list(table(PAYMENT_LEDGER).list_entities())
    charged = {
        r["PartitionKey"] for r in rows if r["RowKey"] == "charge" and r["Status"] == "succeeded"
    }
    refunded = {
        r["PartitionKey"] for r in rows if r["RowKey"] == "refund" and r["Status"] == "succeeded"
    }
    shipped = {
        r["PartitionKey"] for r in table(SHIPMENTS).list_entities() if r["RowKey"] == "shipment"
    }
    assert charged == shipped | refunded
    assert shipped == completed and not (shipped & refunded)
    net = sum(
        r["AmountCents"] * (1 if r["RowKey"] == "charge" else -1)
        for r in rows
        if r["Status"] == "succeeded"
    )
    assert net == 1000 * len(completed)  # one 10.00 charge per completed order, none twice
