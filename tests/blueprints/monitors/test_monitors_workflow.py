"""The health monitor run for real against a local HTTP server that flips healthy/unhealthy."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from blueprints.notifications.outbox import list_notifications
from devhost.testing import DurableTestHost
from models.notifications import NotificationListQuery
from tests.waiting import eventually

# Run once with a connection string and once identity-based (a token, no account key).
pytestmark = [pytest.mark.usefixtures("app_storage"), pytest.mark.both_storage_paths]


@pytest.fixture(autouse=True)
def local_targets_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in endpoint listens on loopback, which monitors refuse unless allow-listed."""
    monkeypatch.setenv("MONITOR_ALLOWED_HOSTS", "127.0.0.1")


class HealthEndpoint:
    """Answers with the scripted status codes in turn (then the last one), noting each call."""

    def __init__(self, script: list[int]) -> None:
        self.script = script
        self.calls: list[datetime] = []
        self.clock: Any = None
        self.hold: asyncio.Event | None = None
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(self.clock() if self.clock else datetime.min)
        if self.hold is not None:
            await self.hold.wait()
        code = self.script[min(len(self.calls), len(self.script)) - 1]
        return web.Response(status=code, text="ok" if code < 300 else "database down")

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/health"))


@pytest.fixture
async def endpoint() -> AsyncIterator[HealthEndpoint]:
    health = HealthEndpoint([200])
    app = web.Application()
    app.router.add_get("/health", health.handle)
    health.server = TestServer(app)
    await health.server.start_server()
    yield health
    await health.server.close()


def monitor_body(endpoint: HealthEndpoint, **extra: Any) -> dict[str, Any]:
    return {
        "monitorId": "api-health",
        "url": endpoint.url,
        "healthyIntervalSeconds": 60,
        "unhealthyIntervalSeconds": 10,
        "alertRecipient": "oncall@example.com",
        **extra,
    }


async def test_alerts_once_per_transition_with_intervals_per_state(
    async_durable_host: DurableTestHost, endpoint
) -> None:
    endpoint.script = [200, 200, 500, 503, 200, 200, 500, 200]
    endpoint.clock = async_durable_host.now
    start = async_durable_host.now()
    client = await async_durable_host.http()
    expires = (start + timedelta(seconds=3600)).isoformat()
    response = await client.post("/api/monitors", json=monitor_body(endpoint, expiresAt=expires))
    assert response.status == 202
    assert response.headers["Location"] and response.headers["Retry-After"]
    final = await async_durable_host.wait("api-health")
    history = await async_durable_host.status("api-health", history=True)

    body = await (await client.get("/api/monitors/api-health")).json()

    gaps = [
        (b - a).total_seconds() for a, b in zip(endpoint.calls, endpoint.calls[1:], strict=False)
    ]
    assert gaps[:8] == pytest.approx([60, 60, 10, 10, 60, 60, 10, 60], abs=0.01)
    assert len(endpoint.calls) == 63  # then every 60 s until the hour is over

    result = final["output"]
    assert result["stoppedBecause"] == "expired"
    assert (result["cycles"], result["alertsSent"], result["state"]) == (63, 2, "healthy")
    assert len(result["recentChecks"]) == 5
    assert body["result"] == result and body["state"] == "healthy"

    alerts = list_notifications(NotificationListQuery(recipient="oncall@example.com"))
    assert sorted(n.notification_id for n in alerts.notifications) == [
        "api-health:unhealthy:1",
        "api-health:unhealthy:2",
    ]
    # The alert says what failed, never what the endpoint answered.
    assert "HTTP 500" in alerts.notifications[0].body
    assert "database down" not in alerts.notifications[0].body
    # continue_as_new each cycle: the history is one cycle's, not 63.
    assert history is not None and len(history["historyEvents"]) < 15


@pytest.mark.durable_host(virtual_time="manual")
async def test_stop_event_while_sleeping_and_the_async_status_route(
    async_durable_host: DurableTestHost, endpoint
) -> None:
    client = await async_durable_host.http()
    await client.post("/api/monitors", json=monitor_body(endpoint, healthyIntervalSeconds=3600))
    await async_durable_host.wait_for_custom_status("api-health", lambda s: s and s["cycle"] == 1)
    async_durable_host.advance(timedelta(hours=1))
    await async_durable_host.wait_for_custom_status("api-health", lambda s: s and s["cycle"] == 2)

    running = await client.get("/api/monitors/api-health")
    assert running.status == 202
    assert running.headers["Location"].endswith("/api/monitors/api-health")
    assert (await running.json())["state"] == "healthy"

    stop = await client.post("/api/monitors/api-health/stop", json={"reason": "maintenance"})
    assert stop.status == 202
    final = await async_durable_host.wait("api-health")
    done = await client.get("/api/monitors/api-health")
    assert done.status == 200
    assert (await client.post("/api/monitors/api-health/stop")).status == 410

    assert final["output"]["stoppedBecause"] == "stopped"
    assert final["output"]["detail"] == "maintenance"
    assert len(endpoint.calls) == 2


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_stop_raised_during_a_check_is_not_lost(
    async_durable_host: DurableTestHost, endpoint
) -> None:
    endpoint.hold = asyncio.Event()
    client = await async_durable_host.http()
    await client.post("/api/monitors", json=monitor_body(endpoint))
    await eventually(lambda: endpoint.calls, "the monitor's first check", interval=0.005)
    await async_durable_host.raise_event("api-health", "stop", {"reason": "during the check"})
    endpoint.hold.set()
    final = await async_durable_host.wait("api-health")

    assert final["output"]["stoppedBecause"] == "stopped"
    assert final["output"]["cycles"] == 1


@pytest.mark.durable_host(virtual_time="manual")
async def test_an_unreachable_endpoint_is_unhealthy(
    async_durable_host: DurableTestHost, endpoint
) -> None:
    client = await async_durable_host.http()
    body = monitor_body(endpoint, url="http://127.0.0.1:9/health")
    await client.post("/api/monitors", json=body)
    status = await async_durable_host.wait_for_custom_status(
        "api-health", lambda s: s and s["cycle"] == 1
    )
    await async_durable_host.raise_event("api-health", "stop")
    await async_durable_host.wait("api-health")

    check = status["customStatus"]["recentChecks"][0]
    assert status["customStatus"]["state"] == "unhealthy"
    assert check["healthy"] is False and check["detail"]
