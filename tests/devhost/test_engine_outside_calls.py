"""``call_http`` against a local server, and activity overrides."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from devhost.testing import DurableTestHost
from tests.devhost.apps.outside_calls import INDEX
from tests.local_service import serving


@pytest.fixture
async def host() -> AsyncIterator[DurableTestHost]:
    async with DurableTestHost(index=INDEX) as test_host:
        yield test_host


@pytest.fixture
async def orders_url() -> AsyncIterator[str]:
    """A local HTTP service that echoes what it received."""

    async def create_order(request: web.Request) -> web.Response:
        body = await request.text()
        reply = {
            "received": json.loads(body),
            "contentType": request.headers.get("Content-Type"),
            "order": request.headers.get("X-Order"),
        }
        return web.json_response(reply, status=201, headers={"X-Reply": "yes"})

    async with serving("/orders", create_order) as url:
        yield url


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/orders"


async def test_call_http_returns_status_headers_and_content(
    host: DurableTestHost, orders_url: str
) -> None:
    status = await host.run("post_order", orders_url)

    assert status["runtimeStatus"] == "Completed"
    response: dict[str, Any] = status["output"]
    assert set(response) == {"statusCode", "headers", "content"}
    assert response["statusCode"] == 201
    assert response["headers"]["X-Reply"] == "yes"
    # Content headers are not part of the recorded headers (§3.13).
    assert not any(name.lower() == "content-type" for name in response["headers"])
    assert json.loads(response["content"]) == {
        "received": {"sku": "A1"},
        "contentType": "text/plain",  # the extension's default for string content
        "order": "42",
    }


async def test_call_http_network_error_fails_the_orchestration(host: DurableTestHost) -> None:
    status = await host.run("post_order", closed_port_url())

    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith("Orchestrator function 'post_order' failed: ")
    assert "127.0.0.1" in status["output"]


async def test_activity_without_override_runs_the_real_function(host: DurableTestHost) -> None:
    status = await host.run("checkout")

    assert status["runtimeStatus"] == "Failed"
    assert "ConnectionError: the payment provider is unreachable" in status["output"]


async def test_activity_override_replaces_the_function_by_name() -> None:
    received: list[Any] = []

    def fake_charge(amount: int) -> dict[str, Any]:
        received.append(amount)
        return {"charged": amount}

    async with DurableTestHost(index=INDEX, activity_overrides={"charge_card": fake_charge}) as h:
        status = await h.run("checkout")

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"charged": 30}
    assert received == [30]


async def test_async_override_and_case_insensitive_name() -> None:
    async def fake_charge(amount: int) -> str:
        return f"charged {amount} asynchronously"

    async with DurableTestHost(index=INDEX, activity_overrides={"CHARGE_CARD": fake_charge}) as h:
        status = await h.run("checkout")

    assert status["output"] == "charged 30 asynchronously"


async def test_override_that_raises_fails_like_the_activity() -> None:
    def declined(amount: int) -> None:
        raise ValueError(f"card declined for {amount}")

    async with DurableTestHost(index=INDEX, activity_overrides={"charge_card": declined}) as h:
        status = await h.run("checkout")

    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "Orchestrator function 'checkout' failed: "
        "Activity function 'charge_card' failed:  ValueError: card declined for 30"
    )
