"""The durable management API over plain HTTP (devhost/web/management.py).

Expected codes and bodies are those of HttpApiHandler.cs (protocol notes §7).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from aiohttp.test_utils import TestClient, TestServer

from devhost.app.loader import index_app
from devhost.engine.api import StatusOptions
from devhost.web.server import create_web_app
from tests.devhost.fake_backend import FakeBackend

BASES = ["/runtime/webhooks/durabletask", "/durabletask"]
JSON_UTF8 = "application/json; charset=utf-8"


def _app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context")
    def hello_orchestrator(context: df.DurableOrchestrationContext) -> str:
        return "done"

    @app.entity_trigger(context_name="context")
    def counter(context: df.DurableEntityContext) -> None:
        context.set_state((context.get_state(lambda: 0) or 0) + 1)

    return app


@pytest.fixture
def backend() -> FakeBackend:
    index = index_app(_app())
    return FakeBackend(orchestrators=tuple(index.orchestrators), entity_names=("counter",))


@pytest.fixture
async def http(backend: FakeBackend) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_web_app(index_app(_app()), backend)
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture(params=BASES)
def base(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- start ------------------------------------------------------------------------------------


async def test_start_answers_the_hosts_check_status_response(
    http: TestClient[Any, Any], backend: FakeBackend, base: str
) -> None:
    resp = await http.post(f"{base}/orchestrators/hello_orchestrator/order-1", json={"a": 1})

    assert resp.status == 202
    assert resp.headers["Content-Type"] == JSON_UTF8
    assert resp.headers["Retry-After"] == "10"
    body = await resp.json()
    origin = str(http.make_url("")).rstrip("/")
    instance = f"{origin}/runtime/webhooks/durabletask/instances/order-1"
    query = "taskHub=TestHubName&connection=Storage"
    assert body == {
        "id": "order-1",
        "statusQueryGetUri": f"{instance}?{query}",
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
        "purgeHistoryDeleteUri": f"{instance}?{query}",
        "restartPostUri": f"{instance}/restart?{query}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
    }
    assert resp.headers["Location"] == body["statusQueryGetUri"]
    assert backend.calls_named("start_new") == [("hello_orchestrator", "order-1", '{"a": 1}')]


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        (b'"{\\"a\\": 1}"', '"{\\"a\\": 1}"'),  # what the Python client sends: a JSON string
        (b"[1, 2]\n", "[1, 2]"),
        (b"", None),
        (b"  ", None),
        (b"null", None),
    ],
)
async def test_start_stores_the_body_json_text(
    http: TestClient[Any, Any], backend: FakeBackend, body: bytes, stored: str | None
) -> None:
    resp = await http.post(
        "/durabletask/orchestrators/hello_orchestrator",
        data=body,
        headers={"Content-Type": "application/json"},
    )

    assert resp.status == 202
    ((name, instance_id, input_json),) = backend.calls_named("start_new")
    assert (name, instance_id, input_json) == ("hello_orchestrator", None, stored)
    assert (await resp.json())["id"] in backend.instances


async def test_start_with_invalid_json_is_400_and_starts_nothing(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    resp = await http.post("/durabletask/orchestrators/hello_orchestrator", data=b"{nope")

    assert resp.status == 400
    body = await resp.json()
    assert body["Message"] == "Invalid JSON content"
    assert body["ExceptionMessage"]
    assert set(body) == {"Message", "ExceptionMessage", "ExceptionType", "StackTrace"}
    assert backend.calls_named("start_new") == []


async def test_start_of_an_unknown_orchestrator_is_400_with_the_reason(
    http: TestClient[Any, Any],
) -> None:
    resp = await http.post("/durabletask/orchestrators/nope")

    assert resp.status == 400
    body = await resp.json()
    assert body["Message"] == "One or more of the arguments submitted is incorrect"
    assert "'nope' doesn't exist" in body["ExceptionMessage"]
    assert body["ExceptionType"] == "System.ArgumentException"


async def test_start_over_a_running_instance_is_500(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    backend.put_instance("busy", "Running")

    resp = await http.post("/durabletask/orchestrators/hello_orchestrator/busy")

    assert resp.status == 500
    body = await resp.json()
    assert body["Message"] == "Something went wrong while processing your request"
    assert body["ExceptionMessage"] == (
        "An Orchestration instance with the status Running already exists."
    )


async def test_start_only_answers_post(http: TestClient[Any, Any]) -> None:
    resp = await http.get("/durabletask/orchestrators/hello_orchestrator")
    assert resp.status == 404
    assert await resp.read() == b""


async def test_start_and_wait_returns_the_output_when_completed(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    async def completes(instance_id: str, timeout: float) -> dict[str, Any] | None:
        backend.calls.append(("wait_for_completion", instance_id, timeout))
        backend.instances[instance_id].runtime_status = "Completed"
        backend.instances[instance_id].output = {"total": 3}
        return backend.instances[instance_id].status(StatusOptions())

    backend.wait_for_completion = completes  # type: ignore[method-assign]

    resp = await http.post(
        "/durabletask/orchestrators/hello_orchestrator/w1?timeout=7&pollingInterval=1"
    )

    assert resp.status == 200
    assert await resp.json() == {"total": 3}
    assert backend.calls_named("wait_for_completion") == [("w1", 7.0)]


async def test_start_and_wait_falls_back_to_check_status_when_still_running(
    http: TestClient[Any, Any],
) -> None:
    resp = await http.post(
        "/durabletask/orchestrators/hello_orchestrator/w2?timeout=0.1&pollingInterval=0.1"
    )

    assert resp.status == 202
    assert (await resp.json())["id"] == "w2"


async def test_start_and_wait_rejects_an_interval_longer_than_the_timeout(
    http: TestClient[Any, Any],
) -> None:
    resp = await http.post(
        "/durabletask/orchestrators/hello_orchestrator/w3?timeout=1&pollingInterval=5"
    )

    assert resp.status == 400
    assert (await resp.json())["ExceptionMessage"] == (
        "Total timeout 1 should be bigger than retry timeout 5"
    )


# -- status -----------------------------------------------------------------------------------


async def test_status_of_a_running_instance_is_202_with_location_and_retry_after(
    http: TestClient[Any, Any], backend: FakeBackend, base: str
) -> None:
    backend.put_instance("i1", "Running", input_json='"{\\"a\\": 1}"')

    resp = await http.get(f"{base}/instances/i1?taskHub=TestHubName")

    assert resp.status == 202
    assert resp.headers["Location"] == str(resp.url)
    assert resp.headers["Retry-After"] == "5"
    assert resp.headers["Content-Type"] == JSON_UTF8
    body = await resp.json()
    assert (body["instanceId"], body["runtimeStatus"], body["input"]) == (
        "i1",
        "Running",
        '{"a": 1}',
    )
    # showInput defaults to true; the other flags to false.
    assert backend.calls_named("get_status")[-1] == ("i1", StatusOptions(False, False, True))


@pytest.mark.parametrize(
    ("runtime_status", "query", "code"),
    [
        ("Completed", "", 200),
        ("Terminated", "", 200),
        ("Failed", "", 200),
        ("Failed", "?returnInternalServerErrorOnFailure=true", 500),
        ("Suspended", "", 202),
        ("Pending", "", 202),
        ("ContinuedAsNew", "", 202),
    ],
)
async def test_status_code_follows_the_runtime_status(
    http: TestClient[Any, Any], backend: FakeBackend, runtime_status: str, query: str, code: int
) -> None:
    backend.put_instance("i1", runtime_status)

    resp = await http.get(f"/durabletask/instances/i1{query}")

    assert resp.status == code
    assert ("Location" in resp.headers) == (code == 202)
    assert (await resp.json())["runtimeStatus"] == runtime_status


async def test_status_of_an_unknown_instance_is_an_empty_404(http: TestClient[Any, Any]) -> None:
    resp = await http.get("/durabletask/instances/ghost")

    assert resp.status == 404
    assert await resp.read() == b""


async def test_status_flags_are_passed_on(http: TestClient[Any, Any], backend: FakeBackend) -> None:
    backend.put_instance("i1", "Completed")

    await http.get(
        "/durabletask/instances/i1?showHistory=True&showHistoryOutput=TRUE&showInput=false"
    )
    await http.get("/durabletask/instances/i1?SHOWINPUT=nonsense")

    assert backend.calls_named("get_status") == [
        ("i1", StatusOptions(show_history=True, show_history_output=True, show_input=False)),
        ("i1", StatusOptions(show_history=False, show_history_output=False, show_input=True)),
    ]


# -- list and purge ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["instances", "instances/"])
async def test_list_returns_an_array_and_always_a_continuation_header(
    http: TestClient[Any, Any], backend: FakeBackend, path: str
) -> None:
    backend.put_instance("a", "Running")
    backend.put_instance("b", "Completed")

    resp = await http.get(f"/runtime/webhooks/durabletask/{path}")

    assert resp.status == 200
    assert resp.headers["x-ms-continuation-token"] == ""
    assert sorted(s["instanceId"] for s in await resp.json()) == ["a", "b"]


async def test_list_filters_and_paging_reach_the_backend(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    for name in ("p1", "p2", "p3"):
        backend.put_instance(name, "Running")

    resp = await http.get(
        "/durabletask/instances/?runtimeStatus=Running,Pending&runtimeStatus=Failed"
        "&runtimeStatus=running&instanceIdPrefix=p&top=2&showInput=false"
        "&createdTimeFrom=2023-12-31T00:00:00.0000000Z&createdTimeTo=2024-02-01",
        headers={"x-ms-continuation-token": "0"},
    )

    assert resp.status == 200
    assert len(await resp.json()) == 2
    assert resp.headers["x-ms-continuation-token"] == "2"
    ((query, top, continuation, show_input),) = backend.calls_named("list_instances")
    # Status names are case-sensitive on the host (Enum.TryParse): "running" is dropped.
    assert query.runtime_status == ["Running", "Pending", "Failed"]
    assert query.instance_id_prefix == "p"
    assert query.created_from == datetime(2023, 12, 31, tzinfo=UTC)
    assert query.created_to == datetime(2024, 2, 1, tzinfo=UTC)
    assert (top, continuation, show_input) == (2, "0", False)


async def test_purge_one_instance(http: TestClient[Any, Any], backend: FakeBackend) -> None:
    backend.put_instance("done", "Completed")

    first = await http.delete("/durabletask/instances/done")
    second = await http.delete("/durabletask/instances/done")

    assert first.status == 200
    assert await first.json() == {"instancesDeleted": 1}
    assert second.status == 404
    assert await second.read() == b""


async def test_purge_by_filter_needs_created_time_from(http: TestClient[Any, Any]) -> None:
    resp = await http.delete("/durabletask/instances?runtimeStatus=Completed")

    assert resp.status == 400
    # CreateResponse(BadRequest, string): a bare JSON string, not a {"Message"} object.
    assert await resp.json() == "Please provide value for 'createdTimeFrom' parameter."


async def test_purge_by_filter_counts_or_answers_404_for_none(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    backend.put_instance("c1", "Completed")
    backend.put_instance("r1", "Running")

    resp = await http.delete(
        "/durabletask/instances/?createdTimeFrom=2023-01-01&runtimeStatus=Completed"
    )
    again = await http.delete(
        "/durabletask/instances/?createdTimeFrom=2023-01-01&runtimeStatus=Completed"
    )

    assert resp.status == 200
    assert await resp.json() == {"instancesDeleted": 1}
    assert again.status == 404
    assert list(backend.instances) == ["r1"]
    created_from, created_to, statuses = backend.calls_named("purge_many")[0]
    assert created_from == datetime(2023, 1, 1, tzinfo=UTC)
    assert created_to is not None and created_to.tzinfo is not None  # "now" by default
    assert statuses == ["Completed"]


@pytest.mark.parametrize("edge", ["0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-01:00"])
async def test_a_time_outside_the_utc_range_is_ignored_as_the_host_ignores_it(
    http: TestClient[Any, Any], backend: FakeBackend, edge: str
) -> None:
    # DateTime.TryParse fails when the UTC value falls outside years 1-9999: no filter, no 500.
    backend.put_instance("c1", "Completed")

    listed = await http.get(f"/durabletask/instances?createdTimeFrom={edge}&createdTimeTo={edge}")
    entities = await http.get(f"/durabletask/entities?lastOperationTimeFrom={edge}")
    purged = await http.delete(f"/durabletask/instances?createdTimeFrom={edge}")

    assert listed.status == 200
    ((query, *_),) = backend.calls_named("list_instances")
    assert (query.created_from, query.created_to) == (None, None)
    assert entities.status == 200
    assert purged.status == 400
    assert await purged.json() == "Please provide value for 'createdTimeFrom' parameter."
    assert list(backend.instances) == ["c1"]


# -- raise event and commands -----------------------------------------------------------------


async def test_raise_event_passes_the_json_text(
    http: TestClient[Any, Any], backend: FakeBackend, base: str
) -> None:
    backend.put_instance("i1", "Running")

    resp = await http.post(f"{base}/instances/i1/raiseEvent/Approve", json={"ok": True})

    assert resp.status == 202
    assert await resp.read() == b""
    assert backend.calls_named("raise_event") == [("i1", "Approve", '{"ok": true}')]


async def test_raise_event_requires_json_content(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    backend.put_instance("i1", "Running")

    wrong_type = await http.post("/durabletask/instances/i1/raiseEvent/E", data="hello")
    bad_json = await http.post(
        "/durabletask/instances/i1/raiseEvent/E",
        data="{bad",
        headers={"Content-Type": "application/json"},
    )

    assert wrong_type.status == 400
    assert await wrong_type.json() == {
        "Message": "Only application/json request content is supported"
    }
    assert bad_json.status == 400
    assert (await bad_json.json())["Message"] == "Invalid JSON content"
    assert backend.calls_named("raise_event") == []


@pytest.mark.parametrize(
    ("setup", "code"), [(None, 404), ("Completed", 410), ("Failed", 410), ("Terminated", 410)]
)
async def test_raise_event_checks_the_instance_before_the_body(
    http: TestClient[Any, Any], backend: FakeBackend, setup: str | None, code: int
) -> None:
    if setup:
        backend.put_instance("i1", setup)

    resp = await http.post("/durabletask/instances/i1/raiseEvent/E", data="not json at all")

    assert resp.status == code
    assert await resp.read() == b""


@pytest.mark.parametrize("operation", ["terminate", "suspend", "resume", "rewind"])
async def test_commands_answer_404_for_unknown_instances(
    http: TestClient[Any, Any], operation: str
) -> None:
    resp = await http.post(f"/durabletask/instances/ghost/{operation}?reason=x")
    assert resp.status == 404
    assert await resp.read() == b""


async def test_terminate_passes_the_reason_and_answers_202(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    backend.put_instance("i1", "Running")

    resp = await http.post("/durabletask/instances/i1/Terminate?reason=changed%20my%20mind")

    assert resp.status == 202
    assert await resp.read() == b""
    assert backend.calls_named("terminate") == [("i1", "changed my mind")]


@pytest.mark.parametrize(
    ("operation", "runtime_status", "code"),
    [
        ("terminate", "Completed", 410),
        ("terminate", "Failed", 410),
        ("suspend", "Terminated", 410),
        ("resume", "Completed", 410),
        ("rewind", "Completed", 410),
        ("rewind", "Failed", 202),
        ("suspend", "Running", 202),
        ("resume", "Suspended", 202),
    ],
)
async def test_commands_against_the_instance_state(
    http: TestClient[Any, Any],
    backend: FakeBackend,
    operation: str,
    runtime_status: str,
    code: int,
) -> None:
    backend.put_instance("i1", runtime_status)

    resp = await http.post(f"/durabletask/instances/i1/{operation}?reason=r")

    assert resp.status == code
    called = backend.calls_named(operation)
    assert called == ([("i1", "r")] if code == 202 else [])


async def test_an_invalid_command_for_the_state_is_500_with_the_reason(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    backend.put_instance("i1", "Suspended")

    resp = await http.post("/durabletask/instances/i1/suspend")

    assert resp.status == 500
    body = await resp.json()
    assert body["Message"] == "Something went wrong while processing your request"
    assert body["ExceptionMessage"] == "Instance 'i1' is already suspended."
    assert body["ExceptionType"] == "System.InvalidOperationException"


async def test_restart_answers_check_status_for_the_new_instance(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    backend.put_instance("old", "Completed", input_json='"x"')

    fresh = await http.post("/durabletask/instances/old/restart")
    same = await http.post("/durabletask/instances/old/restart?restartWithNewInstanceId=false")

    assert fresh.status == 202
    new_id = (await fresh.json())["id"]
    assert new_id != "old" and backend.instances[new_id].input_json == '"x"'
    assert same.status == 202
    assert (await same.json())["id"] == "old"
    assert backend.calls_named("restart") == [("old", True), ("old", False)]


async def test_restart_of_an_unknown_instance_is_400(http: TestClient[Any, Any]) -> None:
    resp = await http.post("/durabletask/instances/ghost/restart")

    assert resp.status == 400
    body = await resp.json()
    assert body["Message"] == "InstanceId does not match a valid orchestration instance."


# -- entities ---------------------------------------------------------------------------------


async def test_read_entity_state(
    http: TestClient[Any, Any], backend: FakeBackend, base: str
) -> None:
    backend.entities[("counter", "k1")] = '{"count": 5}'
    backend.entities[("counter", "")] = "7"

    found = await http.get(f"{base}/entities/Counter/k1")
    empty_key = await http.get(f"{base}/entities/counter/$")
    missing = await http.get(f"{base}/entities/counter/nope")

    assert found.status == 200
    assert found.headers["Content-Type"] == JSON_UTF8
    assert await found.json() == {"count": 5}
    assert await empty_key.json() == 7
    assert missing.status == 404
    assert await missing.read() == b""
    assert backend.calls_named("read_entity")[0] == ("counter", "k1")


@pytest.mark.parametrize(
    ("content_type", "body", "stored"),
    [
        ("application/json", b'"5"', '"5"'),
        ("application/json; charset=utf-8", b'{"n": 1}', '{"n": 1}'),
        ("text/plain", b"hello", '"hello"'),
        (None, b"", None),
    ],
)
async def test_signal_entity(
    http: TestClient[Any, Any],
    backend: FakeBackend,
    content_type: str | None,
    body: bytes,
    stored: str | None,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}

    resp = await http.post("/durabletask/entities/Counter/k1?op=add", data=body, headers=headers)

    assert resp.status == 202
    assert await resp.read() == b""
    assert backend.calls_named("signal_entity") == [("counter", "k1", "add", stored)]


async def test_delete_entity_signals_the_delete_operation(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    resp = await http.delete("/durabletask/entities/counter/k1")

    assert resp.status == 202
    assert backend.calls_named("signal_entity") == [("counter", "k1", "delete", None)]


async def test_signal_errors_carry_only_a_message(http: TestClient[Any, Any]) -> None:
    unknown = await http.post("/durabletask/entities/nope/k1?op=x")
    bad_json = await http.post(
        "/durabletask/entities/counter/k1?op=x",
        data=b"{bad",
        headers={"Content-Type": "application/json"},
    )

    assert unknown.status == 400
    unknown_body = await unknown.json()
    assert list(unknown_body) == ["Message"]
    assert "'nope' doesn't exist" in unknown_body["Message"]
    assert bad_json.status == 400
    assert (await bad_json.json())["Message"].startswith("Could not parse JSON content: ")


@pytest.mark.parametrize(("path", "name"), [("entities", None), ("entities/Counter/", "counter")])
async def test_list_entities(
    http: TestClient[Any, Any], backend: FakeBackend, path: str, name: str | None
) -> None:
    backend.entities[("counter", "k1")] = "1"

    resp = await http.get(f"/durabletask/{path}?fetchState=true&top=10")

    assert resp.status == 200
    assert resp.headers["x-ms-continuation-token"] == ""
    assert await resp.json() == [
        {
            "entityId": {"name": "counter", "key": "k1"},
            "lastOperationTime": "2024-01-01T00:00:00Z",
            "state": 1,
        }
    ]
    assert backend.calls_named("list_entities") == [(name, 10, None, True)]


# -- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/durabletask/nothing"),
        ("GET", "/durabletask"),
        ("POST", "/durabletask/instances/i1"),
        ("GET", "/durabletask/instances/i1/terminate"),
        ("POST", "/durabletask/instances/i1/explode"),
        ("PUT", "/durabletask/instances"),
        ("GET", "/durabletask/instances/i1/raiseEvent/E"),
        ("PUT", "/durabletask/entities/counter/k1"),
    ],
)
async def test_unknown_routes_and_wrong_methods_are_empty_404s(
    http: TestClient[Any, Any], backend: FakeBackend, method: str, path: str
) -> None:
    backend.put_instance("i1", "Running")

    resp = await http.request(method, path)

    assert resp.status == 404
    assert await resp.read() == b""


async def test_management_paths_are_case_insensitive(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    backend.put_instance("i1", "Completed", output="ok")

    resp = await http.get("/Runtime/WebHooks/DurableTask/INSTANCES/i1")

    assert resp.status == 200
    assert (await resp.json())["output"] == "ok"


async def test_make_primary_is_accepted(http: TestClient[Any, Any]) -> None:
    resp = await http.post("/durabletask/makeprimary")
    assert resp.status == 200


async def test_an_engine_crash_is_500_and_the_server_keeps_serving(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    async def broken(instance_id: str, options: StatusOptions) -> dict[str, Any] | None:
        raise RuntimeError("disk on fire")

    backend.get_status = broken  # type: ignore[method-assign]

    resp = await http.get("/durabletask/instances/i1")
    after = await http.post("/durabletask/orchestrators/hello_orchestrator/next")

    assert resp.status == 500
    body = await resp.json()
    assert body["Message"] == "Something went wrong while processing your request"
    # The cause goes to the log under a correlation ID; only the ID leaves.
    assert "disk on fire" not in json.dumps(body)
    assert re.fullmatch(
        r"The error was logged under correlation ID [0-9a-f]{32}\.", body["ExceptionMessage"]
    )
    assert body["StackTrace"] is None
    assert after.status == 202


# --- Hostile bodies and queries (never a 500 for the caller's mistake) -------------------------


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        (_nested(64), True),  # Newtonsoft's MaxDepth
        (_nested(65), False),
        (_nested(10_000), False),  # Python's parser would raise RecursionError
        (b'{"n": ' + b"9" * 4300 + b"}", True),
        (b'{"n": ' + b"9" * 5000 + b"}", False),  # more than the worker can read back
        (b'{"n": NaN, "m": -Infinity}', True),  # Newtonsoft reads them
    ],
)
async def test_start_reads_json_as_the_real_host_does(
    http: TestClient[Any, Any], backend: FakeBackend, body: bytes, accepted: bool
) -> None:
    resp = await http.post("/durabletask/orchestrators/hello_orchestrator", data=body)
    raised = await http.post(
        "/durabletask/instances/i1/raiseEvent/go",
        data=body,
        headers={"Content-Type": "application/json"},
    )

    if accepted:
        assert (resp.status, raised.status) == (202, 404)
        return
    answer = await resp.json()
    assert (resp.status, answer["Message"]) == (400, "Invalid JSON content")
    assert answer["ExceptionType"] == "Newtonsoft.Json.JsonReaderException"
    assert answer["StackTrace"] is None
    assert backend.calls_named("start_new") == []


async def test_a_raised_event_too_deep_is_400(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    backend.put_instance("i1", "Running")

    resp = await http.post(
        "/durabletask/instances/i1/raiseEvent/go",
        data=_nested(10_000),
        headers={"Content-Type": "application/json"},
    )

    assert resp.status == 400
    assert (await resp.json())["Message"] == "Invalid JSON content"
    assert backend.calls_named("raise_event") == []


async def test_a_runtime_status_repeated_is_asked_for_once(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    repeated = ",".join(["Running"] * 500) + ",Completed,Running"

    resp = await http.get(f"/durabletask/instances?runtimeStatus={repeated}")

    assert resp.status == 200
    ((query, *_),) = backend.calls_named("list_instances")
    assert query.runtime_status == ["Running", "Completed"]


async def test_a_continuation_token_the_store_did_not_hand_out_is_400(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    async def refuse(*args: Any) -> Any:
        raise ValueError("invalid continuation token 'x'")

    backend.list_instances = refuse  # type: ignore[method-assign]
    backend.list_entities = refuse  # type: ignore[method-assign]
    headers = {"x-ms-continuation-token": "garbage"}

    instances = await http.get("/durabletask/instances", headers=headers)
    entities = await http.get("/durabletask/entities/inventory", headers=headers)
    without_token = await http.get("/durabletask/instances")

    assert (instances.status, entities.status) == (400, 400)
    body = await instances.json()
    assert body["Message"] == "One or more of the arguments submitted is incorrect"
    assert body["ExceptionMessage"] == "The continuation token is not valid."
    assert without_token.status == 500  # no token: the store's own fault


async def test_nan_and_infinity_are_answered_as_strings_as_newtonsoft_writes_them(
    http: TestClient[Any, Any], backend: FakeBackend
) -> None:
    started = await http.post(
        "/durabletask/orchestrators/hello_orchestrator/i-nan",
        data=b'{"n": NaN, "big": 1e400, "small": -Infinity, "ok": 1.5}',
    )
    assert started.status == 202

    status = await http.get("/durabletask/instances/i-nan")
    listed = await http.get("/durabletask/instances")

    def strict(text: str) -> Any:
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the answer"))

    assert strict(await status.text())["input"] == {
        "n": "NaN",
        "big": "Infinity",
        "small": "-Infinity",
        "ok": 1.5,
    }
    assert strict(await listed.text())[0]["input"]["n"] == "NaN"
