"""Which URLs a monitor may check (blueprints.monitors.target): no way into the network."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from blueprints.monitors import target
from blueprints.monitors.target import TargetRefused, check_target, resolve_target


@pytest.fixture
async def local_server() -> AsyncIterator[TestServer]:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=503, text="secret inside")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/metadata")

    app = web.Application()
    app.router.add_get("/health", answer)
    app.router.add_get("/moved", redirect)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:7071/runtime/webhooks/durabletask/instances",
        "http://localhost:10000/devstoreaccount1",
        "http://169.254.169.254/metadata/instance",
        "http://168.63.129.16/machine",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://user:pass@example.com/",
    ],
)
async def test_addresses_inside_the_network_and_other_schemes_are_refused(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(target.ALLOWED_HOSTS_SETTING, raising=False)
    with pytest.raises(TargetRefused):
        await resolve_target(url)
    outcome = await check_target(url)
    assert outcome.status_code is None and outcome.error and outcome.error.startswith("not checked")


async def test_a_public_address_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    async def public_dns(*args: object, **kwargs: object) -> list:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", public_dns)
    addresses = await resolve_target("https://example.com/health")
    assert [a["host"] for a in addresses] == ["93.184.215.14"]


async def test_one_private_answer_among_public_ones_refuses_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def mixed(*args: object, **kwargs: object) -> list:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 80)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)),
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", mixed)
    with pytest.raises(TargetRefused):
        await resolve_target("http://rebinding.example/")


async def test_allow_listed_hosts_are_checked_and_bodies_never_read(
    local_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(local_server.make_url("/health"))
    assert (await check_target(url)).error  # loopback: refused without the allow-list
    monkeypatch.setenv(target.ALLOWED_HOSTS_SETTING, "other.example, 127.0.0.1")
    outcome = await check_target(url)
    assert outcome.status_code == 503 and outcome.error is None
    assert "secret" not in repr(outcome)


async def test_redirects_are_not_followed(
    local_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(target.ALLOWED_HOSTS_SETTING, "127.0.0.1")
    outcome = await check_target(str(local_server.make_url("/moved")))
    assert outcome.status_code == 302
