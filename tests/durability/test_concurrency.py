"""Many clients at once, over HTTP on the local host: every answer is the documented one.

* Listings sent while starts are running all answer 200 (each waits for its own flush of
  the group commit, and none is released by another's).
* Of many concurrent starts of one instance ID exactly one is accepted (202); the others get
  the answer the real host gives for an existing instance: on the built-in API its 500 with
  ``OrchestrationAlreadyExistsException``, on the app's routes their documented 409 (or 200
  "existing" for orders). None is lost silently, none answers a 500 where a route documents
  otherwise.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from devhost.azurite import AzuriteProcess
from devhost.store.azure import AzureStore
from devhost.testing import DurableTestHost
from tests.blueprints.approvals.approvals_helpers import APPROVER_1, chain_body, level
from tests.blueprints.documents.documents_client import document_fields
from tests.blueprints.orders.orders_harness import make_order

WEBHOOKS = "/runtime/webhooks/durabletask"


async def test_listings_during_starts_all_answer() -> None:
    async with DurableTestHost(".") as host:
        client = await host.http()

        async def start(n: int) -> int:
            route = (
                "/api/orchestrators/hello_sequence"
                if n % 2
                else f"{WEBHOOKS}/orchestrators/hello_sequence"
            )
            response = await client.post(route, json={"cities": [f"City{n}"]})
            return response.status

        async def listing(n: int) -> int:
            route = "/api/instances" if n % 2 else f"{WEBHOOKS}/instances"
            response = await client.get(route, params={"top": "10"})
            await response.read()
            return response.status

        answers = await asyncio.wait_for(
            asyncio.gather(*(start(n) for n in range(50)), *(listing(n) for n in range(50))),
            timeout=60,
        )

    assert Counter(answers[:50]) == {202: 50}
    assert Counter(answers[50:]) == {200: 50}


@pytest.mark.azurite
async def test_concurrent_starts_of_one_id_on_the_built_in_api(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    # On Azure Storage, where reading whether the instance exists takes a real round trip.
    # Virtual time that never moves: the approval waits, so it is running for every start.
    store = AzureStore(azurite.connection_string, task_hub)
    async with DurableTestHost(".", store=store, task_hub=task_hub, virtual_time="manual") as host:
        client = await host.http()

        async def start(n: int) -> tuple[int, Any]:
            response = await client.post(
                f"{WEBHOOKS}/orchestrators/human_approval/same-id", json={"timeoutSeconds": 60 + n}
            )
            return response.status, await response.json()

        answers = await asyncio.wait_for(asyncio.gather(*(start(n) for n in range(20))), 60)
        status = await host.status("same-id")

    assert Counter(code for code, _ in answers) == {202: 1, 500: 19}
    refusals = [body for code, body in answers if code == 500]
    assert {body["ExceptionType"] for body in refusals} == {
        "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"
    }
    winner = next(n for n, (code, _) in enumerate(answers) if code == 202)
    assert status is not None and status["runtimeStatus"] == "Running"
    assert status["input"] == {"timeoutSeconds": 60 + winner}  # the accepted input, no other


@pytest.fixture
async def health(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A URL that answers 200 (the monitors poll it), on this machine, allowed on purpose."""
    monkeypatch.setenv("MONITOR_ALLOWED_HOSTS", "127.0.0.1")
    app = web.Application()
    app.router.add_get("/health", lambda request: web.Response(text="ok"))
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("/health"))
    await server.close()


def _friendly_starts(health_url: str) -> list[tuple[str, dict[str, Any], int]]:
    """(route, body, the documented answer to a start of an ID that is running).

    Each of these orchestrations waits (for a person, an event, a timer of a clock that stands
    still, or a held activity), so it still runs when the later starts arrive.
    """
    return [
        ("/api/orchestrators/human_approval/approval-race-1", {"timeoutSeconds": 60}, 409),
        ("/api/orders", make_order("order-race-1"), 200),
        ("/api/approvals", chain_body("req-race-1", level(1, APPROVER_1)), 409),
        ("/api/documents", document_fields(id="doc-race-1"), 409),
        # A repost of a running purchase order with the same body answers 200 with its links.
        (
            "/api/purchase-orders",
            {"orderId": "po-race-1", "amount": 5000, "approverEmail": APPROVER_1},
            200,
        ),
        ("/api/batches", {"jobId": "job-race-1", "dataSource": {"items": [{"a": 1}]}}, 409),
        (
            "/api/monitors",
            {
                "monitorId": "mon-race-1",
                "url": health_url,
                "healthyIntervalSeconds": 3600,
                "unhealthyIntervalSeconds": 60,
                "alertRecipient": "oncall@example.com",
            },
            409,
        ),
    ]


@pytest.mark.usefixtures("app_storage")
async def test_concurrent_starts_of_one_id_on_the_app_routes(
    health: str, azurite: AzuriteProcess, task_hub: str
) -> None:
    store = AzureStore(azurite.connection_string, task_hub)
    release = asyncio.Event()

    async def held(payload: Any) -> Any:
        await release.wait()  # the order and the batch job keep running meanwhile
        raise RuntimeError("released at the end of the test")

    overrides = {"record_order": held, "partition_batch_input": held}
    async with DurableTestHost(
        ".", store=store, task_hub=task_hub, virtual_time="manual", activity_overrides=overrides
    ) as host:
        client = await host.http()

        async def post(route: str, body: dict[str, Any]) -> tuple[int, str]:
            response = await client.post(route, json=body)
            return response.status, await response.text()

        try:
            for route, body, refusal in _friendly_starts(health):
                answers = await asyncio.wait_for(
                    asyncio.gather(*(post(route, body) for _ in range(20))), 60
                )
                codes = Counter(code for code, _ in answers)
                assert codes == {202: 1, refusal: 19}, (route, codes, answers[:3])
                if refusal == 409:
                    problems = [json.loads(text)["error"] for code, text in answers if code == 409]
                    assert all(problem["code"] for problem in problems), route
        finally:
            release.set()
