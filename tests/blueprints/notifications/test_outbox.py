"""The notification outbox on Azurite: an orchestration writes through ``send_notification`` and
``GET /api/notifications`` lists it, served by the local host's HTTP front in-process."""

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from blueprints.notifications import activities, http
from blueprints.notifications.outbox import record_notification
from devhost.app.loader import index_app
from devhost.testing import DurableTestHost
from models.notifications import SendNotificationInput

# Run once with a connection string and once identity-based (a token, no account key).
pytestmark = [pytest.mark.usefixtures("app_storage"), pytest.mark.both_storage_paths]


def _notification(number: int, recipient: str = "ana@example.com") -> dict[str, Any]:
    return SendNotificationInput(
        notification_id=f"inst-{number}:reminder",
        recipient=recipient,
        category="reminder",
        subject=f"Reminder {number}",
        workflow="tests",
        instance_id=f"inst-{number}",
    ).to_wire()


def _app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(activities.bp)
    app.register_functions(http.bp)

    @app.orchestration_trigger(context_name="context")
    def notify_twice(context: df.DurableOrchestrationContext) -> Generator[Any, Any, list[Any]]:
        payload = context.get_input()
        first = yield context.call_activity("send_notification", payload)
        again = yield context.call_activity("send_notification", payload)
        return [first, again]

    return app


@pytest.fixture
def durable_host_options() -> dict[str, Any]:
    """The durable host of these tests runs this module's own app."""
    return {"index": index_app(_app())}


async def test_an_orchestration_writes_once_and_the_route_lists_it(
    async_durable_host: DurableTestHost,
) -> None:
    status = await async_durable_host.run("notify_twice", _notification(1))
    assert [item["created"] for item in status["output"]] == [True, False]

    client = await async_durable_host.http()
    response = await client.get("/api/notifications", params={"recipient": "ANA@example.com"})
    assert response.status == 200
    body = await response.json()
    assert [n["subject"] for n in body["notifications"]] == ["Reminder 1"]
    assert body["notifications"][0]["instanceId"] == "inst-1"
    assert body["continuationToken"] is None


async def test_listing_pages_and_filters(async_durable_host: DurableTestHost) -> None:
    for number in range(5):
        record_notification(SendNotificationInput.model_validate(_notification(number)))
    record_notification(SendNotificationInput.model_validate(_notification(9, "bo@example.com")))
    client = await async_durable_host.http()
    seen: list[str] = []
    params: dict[str, Any] = {"recipient": "ana@example.com", "top": "2"}
    while True:
        body = await (await client.get("/api/notifications", params=params)).json()
        seen += [n["instanceId"] for n in body["notifications"]]
        if not body["continuationToken"]:
            break
        params["continuationToken"] = body["continuationToken"]
    assert sorted(seen) == [f"inst-{n}" for n in range(5)]

    by_instance = await client.get("/api/notifications", params={"instanceId": "inst-9"})
    assert [n["recipient"] for n in (await by_instance.json())["notifications"]] == [
        "bo@example.com"
    ]


async def test_bad_queries_name_the_field(async_durable_host: DurableTestHost) -> None:
    client = await async_durable_host.http()
    response = await client.get("/api/notifications", params={"top": "0"})
    assert response.status == 400
    assert (await response.json())["error"]["details"][0]["field"] == "top"
    response = await client.get("/api/notifications", params={"continuationToken": "x!"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "InvalidContinuationToken"
