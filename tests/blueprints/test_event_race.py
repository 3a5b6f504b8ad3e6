"""Routes that check an instance is unfinished and then raise an event on it: the instance may
end (or be purged) in between, and the host then answers the raise with 410 (or 404), which the
Python client reports only as an ``Exception``. The route must answer its documented refusal,
never a 500 (seen in the chaos run: a batch cancel racing the job's end)."""

from __future__ import annotations

from typing import Any

import pytest

# (route, body, instance ID, orchestrator, the answer for an instance that ended meanwhile)
ROUTES = [
    ("batches/job-1/cancel", {}, "job-1", "batch_job", 410),
    ("monitors/mon-1/stop", {}, "mon-1", "health_monitor", 410),
    ("orders/order-1/cancel", {}, "order-1", "process_order", 409),
    (
        "orders/order-1/approval",
        {"approved": True, "approver": "kim@example.com"},
        "order-1",
        "process_order",
        409,
    ),
]


def _host_answers(message: str) -> Any:
    async def raise_event(instance_id: str, *args: Any, **kwargs: Any) -> None:
        raise Exception(message.format(instance_id=instance_id))

    return raise_event


@pytest.mark.parametrize(("route", "body", "instance_id", "orchestrator", "expected"), ROUTES)
async def test_an_instance_that_ends_before_the_raise_gets_the_routes_refusal(
    api, client, monkeypatch, route, body, instance_id, orchestrator, expected
):
    """The host's 410 for the raise becomes the route's documented answer, not a 500."""
    # An order names its customer, whom the approval route refuses as an approver.
    placed = {"customerId": "cust-1", "customerEmail": "ana@example.com"}
    client.add_instance(
        instance_id, name=orchestrator, input_=placed if orchestrator == "process_order" else None
    )
    if orchestrator == "process_order":
        # The approval route takes an approval only while the order waits for one.
        client.instances[instance_id]["customStatus"] = {"stage": "awaiting_approval"}
    monkeypatch.setattr(
        client,
        "raise_event",
        _host_answers("Instance with ID {instance_id} is gone: either completed or failed"),
    )

    response = await api("POST", route, body)

    assert response.status == expected, response.body
    assert "Traceback" not in str(response.body)
    assert instance_id in response.error["message"]


@pytest.mark.parametrize(
    ("route", "body", "instance_id", "orchestrator"),
    [r[:4] for r in ROUTES if r[4] == 410],
)
async def test_an_instance_purged_before_the_raise_is_404(
    api, client, monkeypatch, route, body, instance_id, orchestrator
):
    """The host's 404 for the raise (the instance was purged meanwhile) is the route's 404."""
    client.add_instance(instance_id, name=orchestrator)
    monkeypatch.setattr(
        client, "raise_event", _host_answers("No instance with ID {instance_id} found.")
    )

    response = await api("POST", route, body)

    assert response.status == 404, response.body
