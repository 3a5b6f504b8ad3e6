"""The real host's request limits and status codes (devhost/web/limits.py), byte for byte."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from aiohttp.test_utils import TestClient, TestServer

from devhost.app.loader import index_app
from devhost.web.server import create_web_app
from tests.devhost.fake_backend import FakeBackend
from tests.fuzz.raw_http import send


def _app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="echo/{item?}", methods=["GET", "POST"])
    def echo(req: func.HttpRequest) -> func.HttpResponse:
        answer = {
            "item": req.route_params.get("item"),
            "body": req.get_body().hex(),
            "encoding": req.headers.get("Content-Encoding"),
        }
        return func.HttpResponse(json.dumps(answer), mimetype="application/json")

    return app


@pytest.fixture
async def http() -> AsyncIterator[TestClient[Any, Any]]:
    client = TestClient(TestServer(create_web_app(index_app(_app()), FakeBackend())))
    await client.start_server()
    yield client
    await client.close()


async def _send(http: TestClient[Any, Any], *args: Any) -> tuple[int, bytes, str]:
    origin = f"http://{http.server.host}:{http.server.port}"
    return await asyncio.to_thread(send, origin, *args)


async def test_a_request_line_over_8_kb_is_414(http: TestClient[Any, Any]) -> None:
    over = await _send(http, "GET", "/api/echo?x=" + "a" * 8200)
    under = await _send(http, "GET", "/api/echo?x=" + "a" * 8000)

    assert (over[0], over[1]) == (414, b"")
    assert under[0] == 200


async def test_more_than_100_headers_or_32_kb_of_them_is_431(http: TestClient[Any, Any]) -> None:
    many = await _send(http, "GET", "/api/echo", {f"X-{n}": "v" for n in range(101)})
    large = await _send(http, "GET", "/api/echo", {"X-Big": "v" * 33_000})
    within = await _send(http, "GET", "/api/echo", {"X-Big": "v" * 30_000})

    assert (many[0], large[0], within[0]) == (431, 431, 200)


async def test_a_header_value_that_is_not_utf8_is_400(http: TestClient[Any, Any]) -> None:
    status, body, _ = await _send(http, "GET", "/api/echo", {"X-Actor": b"caf\xe9"})
    utf8 = await _send(http, "GET", "/api/echo", {"X-Actor": "café".encode()})

    assert (status, body) == (400, b"")
    assert utf8[0] == 200


async def test_a_body_over_the_limit_is_413_before_it_is_read(http: TestClient[Any, Any]) -> None:
    headers = {"Content-Length": str(100 * 1024 * 1024 + 1)}

    status, body, _ = await _send(http, "POST", "/api/echo", headers)
    builtin = await _send(http, "POST", "/runtime/webhooks/durabletask/orchestrators/x", headers)

    assert (status, body, builtin[0]) == (413, b"", 413)


async def test_the_body_limit_follows_the_app_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", "100")
    client = TestClient(TestServer(create_web_app(index_app(_app()), FakeBackend())))
    await client.start_server()
    try:

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x" * 40

        streamed = await client.post("/api/echo", data=chunks())
        small = await client.post("/api/echo", data=b"x" * 100)
    finally:
        await client.close()

    assert (streamed.status, small.status) == (413, 200)


async def test_a_compressed_body_reaches_the_function_as_sent(http: TestClient[Any, Any]) -> None:
    plain = b'{"a": 1}'
    packed = gzip.compress(plain)

    claims = await _send(http, "POST", "/api/echo", {"Content-Encoding": "gzip"}, plain)
    really = await _send(http, "POST", "/api/echo", {"Content-Encoding": "gzip"}, packed)

    assert claims[0] == 200 and json.loads(claims[1])["body"] == plain.hex()
    assert really[0] == 200 and json.loads(really[1])["body"] == packed.hex()


@pytest.mark.parametrize(
    ("target", "item"),
    [
        ("/api/echo/%2E", None),
        ("/api/echo/a/..", None),
        ("/api/echo/./b", "b"),
        ("/api/x/../echo/c", "c"),
        ("/api/echo/a%0Ab", "a\nb"),
        ("/api/echo/a%2F..%2Fb", "a/../b"),
    ],
)
async def test_dot_segments_are_resolved_before_routing_as_kestrel_does(
    http: TestClient[Any, Any], target: str, item: str | None
) -> None:
    status, body, _ = await _send(http, "GET", target)

    assert status == 200, body
    assert json.loads(body)["item"] == item


async def test_a_path_climbing_out_of_the_routes_is_404(http: TestClient[Any, Any]) -> None:
    status, body, _ = await _send(http, "GET", "/api/echo/../..")

    assert (status, body) == (404, b"")
