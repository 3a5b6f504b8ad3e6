"""Calling the app's HTTP-triggered functions through the server (devhost/web/http_functions.py)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from aiohttp.test_utils import TestClient, TestServer

from devhost.app.loader import index_app
from devhost.web.server import create_web_app
from tests.devhost.fake_backend import FakeBackend

seen: dict[str, Any] = {}


def _app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="echo/{item}/{rest?}", methods=["POST", "PUT"])
    def echo(req: func.HttpRequest) -> func.HttpResponse:
        payload = {
            "method": req.method,
            "url": req.url,
            "params": dict(req.params),
            "route": dict(req.route_params),
            "header": req.headers.get("X-Custom"),
            "body": req.get_body().decode(),
            "json": req.get_json(),
        }
        return func.HttpResponse(json.dumps(payload), mimetype="application/json")

    @app.route(route="where")
    def sync_where(req: func.HttpRequest) -> str:
        return threading.current_thread().name

    @app.route(route="where-async")
    async def async_where(req: func.HttpRequest) -> str:
        return threading.current_thread().name

    @app.route(route="custom")
    def custom(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(
            "<b>hi</b>",
            status_code=201,
            mimetype="text/html",
            charset="latin-1",
            headers={"X-Trace": "t1", "Set-Cookie": "a=1"},
        )

    @app.route(route="json-default")
    def json_default(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(b"{}", mimetype="application/json")

    @app.route(route="boom")
    def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("kaput")

    @app.route(route="nothing")
    def nothing(req: func.HttpRequest) -> None:
        return None

    @app.route(route="documents/{id}", methods=["GET"])
    def document(req: func.HttpRequest) -> str:
        return f"document {req.route_params['id']}"

    @app.route(route="documents/search", methods=["GET"])
    def search(req: func.HttpRequest) -> str:
        return "search"

    @app.route(route="with-context")
    def with_context(req: func.HttpRequest, context: func.Context) -> str:
        return f"{context.function_name}:{bool(context.invocation_id)}"

    @app.route(route="client")
    @app.durable_client_input(client_name="client")
    async def client_info(
        req: func.HttpRequest, client: df.DurableOrchestrationClient
    ) -> func.HttpResponse:
        bindings = client._orchestration_bindings
        seen["rpc"] = bindings.rpc_base_url
        seen["status"] = bindings.management_urls["statusQueryGetUri"]
        return func.HttpResponse("ok")

    @app.orchestration_trigger(context_name="context")
    def hello_orchestrator(context: df.DurableOrchestrationContext) -> str:
        return "done"

    return app


async def _serve(route_prefix: str = "api") -> TestClient[Any, Any]:
    app = create_web_app(index_app(_app()), FakeBackend(), route_prefix=route_prefix)
    return TestClient(TestServer(app))


@pytest.fixture
async def http() -> AsyncIterator[TestClient[Any, Any]]:
    async with await _serve() as client:
        yield client


async def test_the_function_sees_the_request_as_the_worker_builds_it(
    http: TestClient[Any, Any],
) -> None:
    resp = await http.put(
        "/api/Echo/a%20b?x=1&x=2&y=z",
        json={"k": "v"},
        headers={"X-Custom": "yes"},
    )

    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    seen_by_function = await resp.json()
    assert seen_by_function == {
        "method": "PUT",
        "url": str(http.make_url("/api/Echo/a%20b?x=1&x=2&y=z")),
        "params": {"x": "1,2", "y": "z"},
        "route": {"item": "a b"},
        "header": "yes",
        "body": '{"k": "v"}',
        "json": {"k": "v"},
    }


async def test_sync_functions_run_off_the_loop_and_async_ones_on_it(
    http: TestClient[Any, Any],
) -> None:
    sync_thread = await (await http.get("/api/where")).text()
    async_thread = await (await http.get("/api/where-async")).text()

    assert sync_thread != threading.current_thread().name
    assert async_thread == threading.current_thread().name


async def test_a_str_return_is_a_200_text_response(http: TestClient[Any, Any]) -> None:
    resp = await http.get("/api/documents/7")

    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await resp.text() == "document 7"


async def test_http_response_status_headers_and_charset_are_kept(
    http: TestClient[Any, Any],
) -> None:
    resp = await http.get("/api/custom")

    assert resp.status == 201
    assert resp.headers["Content-Type"] == "text/html; charset=latin-1"
    assert resp.headers["X-Trace"] == "t1"
    assert resp.headers["Set-Cookie"] == "a=1"
    assert await resp.read() == b"<b>hi</b>"


async def test_a_non_text_mimetype_gets_no_charset(http: TestClient[Any, Any]) -> None:
    resp = await http.get("/api/json-default")
    assert resp.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/api/boom", "RuntimeError: kaput"),
        ("/api/nothing", 'unsupported type "http" for Python type "NoneType"'),
    ],
)
async def test_a_failing_function_is_an_empty_500_and_the_host_keeps_serving(
    http: TestClient[Any, Any], caplog: pytest.LogCaptureFixture, path: str, logged: str
) -> None:
    with caplog.at_level(logging.ERROR, logger="devhost.http"):
        resp = await http.get(path)

    assert resp.status == 500
    assert await resp.read() == b""
    assert logged in caplog.text
    assert (await http.get("/api/documents/1")).status == 200


async def test_literal_routes_win_over_parameters(http: TestClient[Any, Any]) -> None:
    assert await (await http.get("/api/documents/search")).text() == "search"
    assert await (await http.get("/api/documents/searching")).text() == "document searching"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/missing"), ("DELETE", "/api/documents/1"), ("GET", "/documents/1")],
)
async def test_no_route_is_an_empty_404(http: TestClient[Any, Any], method: str, path: str) -> None:
    resp = await http.request(method, path)

    assert resp.status == 404
    assert await resp.read() == b""


async def test_an_empty_route_prefix_serves_at_the_root() -> None:
    async with await _serve(route_prefix="") as client:
        assert (await client.get("/documents/3")).status == 200
        assert (await client.get("/api/documents/3")).status == 404


async def test_a_context_parameter_gets_the_invocation_context(
    http: TestClient[Any, Any],
) -> None:
    assert await (await http.get("/api/with-context")).text() == "with_context:True"


async def test_the_client_binding_points_back_at_this_server(
    http: TestClient[Any, Any],
) -> None:
    resp = await http.get("/api/client", headers={"Host": "public.example:8443"})

    assert resp.status == 200
    port = http.server.port
    # rpcBaseUrl is the socket the request came in on; the public URLs follow the Host header.
    assert seen["rpc"] == f"http://127.0.0.1:{port}/durabletask/"
    assert seen["status"] == (
        "http://public.example:8443/runtime/webhooks/durabletask/instances/INSTANCEID"
        "?taskHub=TestHubName&connection=Storage"
    )


async def test_large_request_bodies_are_accepted(http: TestClient[Any, Any]) -> None:
    big = {"blob": "x" * (2 * 1024 * 1024)}

    resp = await http.post("/api/echo/big", json=big)

    assert resp.status == 200
    assert (await resp.json())["json"] == big
