"""The instances the monitor's browser tests look at: one (or more) of each workflow, started
through the app's own routes on a monitored host."""

from __future__ import annotations

from typing import Any

from monitor_host import MonitoredHost

from tests.e2e.e2e_client import request_json, wait_for

XSS = "<img src=x onerror=window.__xss=1>"


def _runtime_status(host: MonitoredHost, instance_id: str) -> str | None:
    status, body = request_json(
        "GET", f"{host.base_url}/runtime/webhooks/durabletask/instances/{instance_id}"
    )
    return body.get("runtimeStatus") if status in (200, 202) and body else None


def _finished(host: MonitoredHost, instance_id: str) -> bool:
    return _runtime_status(host, instance_id) in ("Completed", "Failed", "Terminated")


def _order(order_id: str, token: str, **settings: Any) -> dict[str, Any]:
    return {
        "orderId": order_id,
        "customerId": "c-monitor",
        "customerEmail": "ana@example.com",
        "items": [
            {"productId": "p1", "sku": "SKU-MON", "name": "Mug", "quantity": 2, "unitPrice": 12.5}
        ],
        "shippingAddress": {
            "street": "1 Main St",
            "city": "Seattle",
            "state": "WA",
            "zipCode": "98101",
            "country": "US",
        },
        "paymentDetails": {"method": "credit_card", "token": token},
        "settings": settings,
    }


def _chain(request_id: str, timeout_hours: float, **level: Any) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "requestType": "purchase",
        "requesterId": "u-1",
        "requesterEmail": "sam@example.com",
        "amount": 1200,
        "description": "Laptops",
        "approvalChain": [
            {
                "level": 1,
                "approverEmail": "lead@example.com",
                "timeoutHours": timeout_hours,
                **level,
            }
        ],
    }


def seed_workflows(monitored_host: MonitoredHost) -> dict[str, str]:
    """Start one instance (or more) of each workflow through the app's own routes; wait until
    each has finished or reached the state the tests look at, and return their IDs by role."""
    base = monitored_host.base_url
    ids: dict[str, str] = {}
    for index, cities in enumerate((["Tokyo", "Seattle"], ["London", XSS], ["Lima"])):
        status, body = request_json(
            "POST", f"{base}/api/orchestrators/hello_sequence", {"cities": cities}
        )
        assert status == 202, body
        ids[f"hello{index}"] = body["id"]
    assert request_json("POST", f"{base}/api/inventory/SKU-MON", {"quantity": 10})[0] == 202
    wait_for(lambda: request_json("GET", f"{base}/api/inventory/SKU-MON")[0] == 200, 60, "stock")
    for order_id, token in (("order-ok", "tok_visa"), ("order-declined", "tok_decline")):
        status, body = request_json("POST", f"{base}/api/orders", _order(order_id, token))
        assert status == 202, body
        ids[order_id] = order_id
    status, body = request_json(
        "POST",
        f"{base}/api/documents",
        {
            "Title": "Onboarding <b>Ana</b>",
            "CreatedDate": "2024-09-07T00:00:00Z",
            "Creator": "hr-admin",
            "ApplicationId": "COMPANY01",
        },
    )
    assert status == 202, body
    ids["document"] = body["id"]
    items = [
        {
            "transactionId": f"T{n}",
            "customerId": "C1",
            "email": f"c{n}@example.com",
            "amount": 12.5,
            "currency": "usd",
            "country": "us",
            "occurredAt": "2024-05-01T10:00:00Z",
        }
        for n in range(12)
    ]
    status, body = request_json(
        "POST",
        f"{base}/api/batches",
        {"jobId": "batch-mon", "dataSource": {"items": items}, "batchSize": 4},
    )
    assert status == 202, body
    ids["batch"] = "batch-mon"
    status, body = request_json("POST", f"{base}/api/approvals", _chain("req-wait", 24))
    assert status == 202, body
    ids["chain"] = body["id"]
    # 3.6 s to decide, then rejected by the timeout policy: a timeout for the metrics.
    status, body = request_json(
        "POST", f"{base}/api/approvals", _chain("req-late", 0.001, autoReject=True)
    )
    assert status == 202, body
    ids["chain-late"] = body["id"]
    for key in ("hello0", "hello1", "hello2", "order-ok", "order-declined", "batch", "chain-late"):
        wait_for(lambda key=key: _finished(monitored_host, ids[key]), 60, f"{key} to finish")
    wait_for(
        lambda: request_json("GET", f"{base}/api/approvals/{ids['chain']}")[1].get("customStatus"),
        60,
        "the chain to wait for its first level",
    )
    return ids
