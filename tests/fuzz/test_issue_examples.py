"""Every example of the hostile-input issue (#14), each answered with a 4xx now.

The app runs in-process on the local host's HTTP front (the same route table, limits, durable
client binding and management API as ``python -m devhost start``), its storage on Azurite.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from devhost.engine.api import EngineError
from devhost.testing import DurableTestHost
from tests.fuzz.checks import LEAKS, error_shape_problem
from tests.fuzz.raw_http import send

pytestmark = [pytest.mark.azurite, pytest.mark.usefixtures("app_storage")]

FRIENDLY_ID_ROUTES = [
    ("GET", "/api/instances/{}"),
    ("DELETE", "/api/instances/{}"),
    ("POST", "/api/instances/{}/terminate"),
    ("POST", "/api/instances/{}/events/approval_received"),
    ("POST", "/api/orchestrators/hello_sequence/{}"),
    ("GET", "/api/orders/{}"),
    ("POST", "/api/orders/{}/cancel"),
    ("GET", "/api/documents/{}"),
    ("PATCH", "/api/documents/{}"),
    ("GET", "/api/documents/{}/status"),
    ("GET", "/api/approvals/{}"),
    ("POST", "/api/approvals/{}/levels/1"),
    ("POST", "/api/approve/{}"),
    ("GET", "/api/batches/{}"),
    ("GET", "/api/batches/{}/report"),
    ("POST", "/api/batches/{}/cancel"),
    ("PUT", "/api/batches/inputs/{}"),
    ("GET", "/api/monitors/{}"),
    ("GET", "/api/inventory/{}"),
]
JSON_ROUTES = [
    ("POST", "/api/orchestrators/hello_sequence"),
    ("POST", "/api/orders"),
    ("POST", "/api/documents"),
    ("PATCH", "/api/documents/doc-1"),
    ("POST", "/api/approvals"),
    ("POST", "/api/batches"),
    ("POST", "/api/monitors"),
    ("POST", "/api/purchase-orders"),
    ("POST", "/api/start-approval"),
    ("POST", "/api/inventory/SKU-1"),
    ("POST", "/api/instances/i-1/terminate"),
    ("POST", "/api/instances/i-1/events/approval_received"),
]
DOCUMENT = {"id": "doc-1", "title": "Hire", "creator": "hr", "applicationId": "A-1"}


@pytest.fixture
async def http() -> AsyncIterator[TestClient[Any, Any]]:
    async with DurableTestHost(".", virtual_time=False) as host:
        yield await host.http()


async def _answer(response: Any) -> tuple[int, Any]:
    text = await response.text()
    assert not LEAKS.search(text), text
    return response.status, json.loads(text) if text else None


def _assert_shaped_4xx(status: int, body: Any, *expected: int) -> dict[str, Any]:
    assert 400 <= status < 500 and (not expected or status in expected), (status, body)
    assert error_shape_problem(body) is None, body
    error: dict[str, Any] = body["error"]
    return error


def _raw(
    http: TestClient[Any, Any], method: str, target: str, *args: Any
) -> tuple[int, bytes, str]:
    return send(f"http://{http.server.host}:{http.server.port}", method, target, *args)


# --- Deep nesting ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
async def test_a_body_nested_10000_levels_is_a_400_on_every_json_route(
    http: TestClient[Any, Any], method: str, path: str
) -> None:
    body = "[" * 10_000 + "]" * 10_000

    status, answer = await _answer(await http.request(method, path, data=body))

    error = _assert_shaped_4xx(status, answer, 400)
    assert (error["code"], error["details"][0]["code"]) == ("MalformedJson", "json_too_deep")


async def test_300_to_400_levels_inside_free_form_fields_are_a_400(
    http: TestClient[Any, Any],
) -> None:
    deep: Any = "x"
    for _ in range(350):
        deep = {"a": deep}
    created = {**DOCUMENT, "properties": {"notes": deep}}

    status, answer = await _answer(await http.post("/api/documents", json=created))

    assert _assert_shaped_4xx(status, answer, 400)["details"][0]["code"] == "json_too_deep"


# --- Numbers -----------------------------------------------------------------------------------


async def test_1e400_is_refused_rather_than_stored_as_infinity(http: TestClient[Any, Any]) -> None:
    body = b'{"quantity": 1e400}'

    status, answer = await _answer(await http.post("/api/inventory/SKU-1", data=body))

    error = _assert_shaped_4xx(status, answer, 400)
    assert error["details"][0]["code"] == "number_out_of_range"


async def test_a_5000_digit_integer_is_a_400_on_the_app_and_the_builtin_api(
    http: TestClient[Any, Any],
) -> None:
    body = b'{"cities": ["Oslo"], "n": ' + b"9" * 5000 + b"}"
    base = "/runtime/webhooks/durabletask"

    app_status, app_answer = await _answer(
        await http.post("/api/orchestrators/hello_sequence", data=body)
    )
    started = await http.post(f"{base}/orchestrators/hello_sequence", data=body)
    raised = await http.post(
        f"{base}/instances/nope/raiseEvent/x",
        data=body,
        headers={"Content-Type": "application/json"},
    )

    _assert_shaped_4xx(app_status, app_answer, 400)
    assert started.status == 400
    assert (await started.json())["Message"] == "Invalid JSON content"
    assert raised.status == 404  # the real host checks the instance before the body


# --- Size and encoding -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/orders", "/runtime/webhooks/durabletask/orchestrators/x"])
async def test_a_101_mb_body_is_a_413(http: TestClient[Any, Any], path: str) -> None:
    # Content-Length says 101 MB: the host answers before reading it, as Kestrel does.
    headers = {"Content-Type": "application/json", "Content-Length": str(101 * 1024 * 1024)}

    status, _, _ = await asyncio.to_thread(_raw, http, "POST", path, headers)

    assert status == 413


async def test_a_body_that_outgrows_the_limit_while_streaming_is_a_413(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", "1000")
    async with DurableTestHost(".") as host:
        http = await host.http()

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 500

        response = await http.post("/api/orders", data=chunks())

        assert response.status == 413


async def test_an_app_route_refuses_a_json_body_over_1_mib(http: TestClient[Any, Any]) -> None:
    body = json.dumps({**DOCUMENT, "title": "x" * (1024 * 1024)})

    status, answer = await _answer(await http.post("/api/documents", data=body))

    assert _assert_shaped_4xx(status, answer, 413)["code"] == "PayloadTooLarge"


async def test_content_encoding_gzip_on_a_plain_body_is_a_415(http: TestClient[Any, Any]) -> None:
    plain = json.dumps({"cities": ["Oslo"]}).encode()
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}

    status, answer = await _answer(
        await http.post("/api/orchestrators/hello_sequence", data=plain, headers=headers)
    )
    really_gzip = await http.post(
        "/api/orchestrators/hello_sequence", data=gzip.compress(plain), headers=headers
    )
    builtin = await http.post(
        "/runtime/webhooks/durabletask/orchestrators/hello_sequence", data=plain, headers=headers
    )

    error = _assert_shaped_4xx(status, answer, 415)
    assert error["details"][0]["field"] == "Content-Encoding"
    assert really_gzip.status == 415
    # The built-in API reads the body as sent, like the real host: it is plain JSON here.
    assert builtin.status == 202


# --- IDs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", [".", "..", "%2E", "%2E%2E", "%2F", "a%252Fb", "a%2F..%2Fb"])
@pytest.mark.parametrize(("method", "template"), FRIENDLY_ID_ROUTES)
async def test_hostile_ids_are_a_4xx_on_every_friendly_route(
    http: TestClient[Any, Any], method: str, template: str, hostile: str
) -> None:
    """Never used as an ID: a 4xx, or, for a dot segment, the route Kestrel resolves it to."""
    target = template.format(hostile)
    headers = {"Content-Type": "application/json"}

    status, body, _ = await asyncio.to_thread(_raw, http, method, target, headers, b"{}")

    text = body.decode("utf-8", "replace")
    assert not LEAKS.search(text), text
    if status < 400:
        # Kestrel removes dot segments before routing: /api/orders/%2E is GET /api/orders
        # (the listing) on the real host too. The dot never reaches a handler as an ID.
        resolved = re.sub(r"/(?:\.|%2E)(?=/|$)", "", target, flags=re.IGNORECASE)
        assert resolved != target, (target, status, text)
        again = await http.request(method, resolved, data=b"{}", headers=headers)
        assert again.status == status
        return
    assert status < 500, (target, status, text)
    if body:  # a dot segment may resolve to no route at all: the host's bodiless 404
        assert error_shape_problem(json.loads(body)) is None, body


@pytest.mark.parametrize("hostile", [".", "..", "%2E", "a/b", "a%252Fb", "@inventory@SKU-1"])
async def test_hostile_ids_in_bodies_are_a_400(http: TestClient[Any, Any], hostile: str) -> None:
    created: list[tuple[str, dict[str, Any]]] = [
        ("/api/documents", {**DOCUMENT, "id": hostile}),
        ("/api/monitors", {"monitorId": hostile, "url": "http://127.0.0.1:9/h"}),
        ("/api/batches", {"jobId": hostile, "dataSource": {"blobName": "inputs/x"}}),
        ("/api/purchase-orders", {"orderId": hostile, "amount": 1}),
    ]
    if hostile != "a/b":  # a blob name may have segments; each is an ID
        blob = {"jobId": "j-1", "dataSource": {"blobName": f"inputs/{hostile}"}}
        created.append(("/api/batches", blob))
    for path, body in created:
        status, answer = await _answer(await http.post(path, json=body))

        assert _assert_shaped_4xx(status, answer, 400)["code"] == "ValidationFailed", path


# --- Headers and query strings -----------------------------------------------------------------


async def _document(http: TestClient[Any, Any]) -> None:
    assert (await http.post("/api/documents", json=DOCUMENT)).status == 202


@pytest.mark.parametrize("value", ["²", "9" * 5000, "3.0", "-1"])
async def test_if_match_that_is_not_a_revision_is_a_400(
    http: TestClient[Any, Any], value: str
) -> None:
    await _document(http)
    headers = {"If-Match": value.encode().decode("latin-1"), "Content-Type": "application/json"}

    response = await http.patch("/api/documents/doc-1", json={"title": "New"}, headers=headers)

    status, answer = await _answer(response)
    assert _assert_shaped_4xx(status, answer, 400)["details"][0]["field"] == "If-Match"


@pytest.mark.parametrize("value", [b"x" * 201, b"caf\xe9 \xff", b"a\x01b"])
async def test_an_x_actor_too_long_or_not_utf8_is_a_400(
    http: TestClient[Any, Any], value: bytes
) -> None:
    await _document(http)
    headers: dict[str, str | bytes] = {"Content-Type": "application/json", "X-Actor": value}

    status, body, media_type = await asyncio.to_thread(
        _raw, http, "PATCH", "/api/documents/doc-1", headers, b'{"title": "New"}'
    )

    assert status == 400, body
    if media_type == "application/json":  # a control character is refused by the HTTP parser
        answer = json.loads(body)
        assert error_shape_problem(answer) is None
        assert answer["error"]["details"][0]["field"] == "X-Actor"


async def test_an_approval_level_of_superscript_two_is_a_400(http: TestClient[Any, Any]) -> None:
    body = {"approved": True, "approverEmail": "a@example.com"}

    status, answer = await _answer(await http.post("/api/approvals/approval-x/levels/²", json=body))

    assert _assert_shaped_4xx(status, answer, 400)["details"][0]["field"] == "level"


@pytest.mark.parametrize("path", ["/api/instances", "/api/orders", "/api/notifications"])
async def test_a_continuation_token_with_a_newline_is_a_400(
    http: TestClient[Any, Any], path: str
) -> None:
    status, answer = await _answer(await http.get(path, params={"continuationToken": "ab\ncd"}))

    error = _assert_shaped_4xx(status, answer, 400)
    assert error["details"][0]["field"] == "continuationToken"


async def test_runtime_status_repeated_500_times_is_answered_without_a_stack_trace(
    http: TestClient[Any, Any],
) -> None:
    repeated = "&".join(["runtimeStatus=Running"] * 500)  # 11 KB: over the request line limit
    listed = "runtimeStatus=" + ",".join(["Running"] * 500)  # 4 KB: each status kept once
    builtin = "/runtime/webhooks/durabletask/instances?" + listed

    too_long = await http.get(f"/api/instances?{repeated}")
    status, answer = await _answer(await http.get(f"/api/instances?{listed}"))
    builtin_status, _ = await _answer(await http.get(builtin))

    assert too_long.status == 414
    assert status == 200 and answer["instances"] == []
    assert builtin_status == 200


# --- Leaks -------------------------------------------------------------------------------------


def _fail(payload: Any) -> Any:
    raise RuntimeError('disk on fire: File "/srv/app/blueprints/batches/store.py", line 12')


async def test_a_failed_batch_shows_a_short_reason_not_the_traceback() -> None:
    async with DurableTestHost(".", activity_overrides={"partition_batch_input": _fail}) as host:
        http = await host.http()
        assert (await http.put("/api/batches/inputs/x", data=b'{"a": 1}\n')).status == 201
        started = await http.post(
            "/api/batches", json={"jobId": "fails-1", "dataSource": {"blobName": "inputs/x"}}
        )
        assert started.status == 202
        await host.wait("fails-1")

        status, view = await _answer(await http.get("/api/batches/fails-1"))

    assert status == 200 and view["runtimeStatus"] == "Failed"
    assert view["error"] == (
        "Orchestrator 'batch_job' failed: Activity 'partition_batch_input' failed: disk on fire"
    )


async def test_a_management_api_failure_is_a_502_without_the_host_s_stack_trace() -> None:
    class HostFault(EngineError):
        status = 500

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise HostFault('Traceback (most recent call last):\n  File "/srv/engine.py", line 9')

    async with DurableTestHost(".") as host:
        host.engine.list_instances = broken  # type: ignore[method-assign]
        http = await host.http()

        status, answer = await _answer(await http.get("/api/instances"))

    error = answer["error"]
    assert (status, error["code"]) == (502, "ManagementApiError")
    assert re.fullmatch(r"[0-9a-f]{32}", error["correlationId"])
    assert error["correlationId"] in error["message"]
