"""The real Python durable client (azure-functions-durable 1.7.0) against our server.

The client is the one the SDK builds from our binding JSON inside an HTTP-triggered function;
every call goes over HTTP to the ``rpcBaseUrl`` routes, and the fake engine records what
arrived. This is the contract an unmodified app relies on (protocol notes §6.3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import azure.durable_functions as df
import azure.functions as func
import pytest
from aiohttp.test_utils import TestClient, TestServer
from azure.durable_functions.models.utils import http_utils

from devhost.app.loader import index_app
from devhost.web.server import create_web_app
from tests.devhost.fake_backend import FakeBackend


@dataclass
class Captured:
    client: df.DurableOrchestrationClient
    request: func.HttpRequest


def _app(captured: list[Captured]) -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="capture")
    @app.durable_client_input(client_name="client")
    async def capture(
        req: func.HttpRequest, client: df.DurableOrchestrationClient
    ) -> func.HttpResponse:
        captured.append(Captured(client, req))
        return func.HttpResponse("captured")

    @app.route(route="orchestrators/{functionName}", methods=["POST"])
    @app.durable_client_input(client_name="client")
    async def http_start(
        req: func.HttpRequest, client: df.DurableOrchestrationClient
    ) -> func.HttpResponse:
        instance_id = await client.start_new(
            req.route_params["functionName"], client_input=req.get_json()
        )
        return client.create_check_status_response(req, instance_id)

    @app.orchestration_trigger(context_name="context")
    def hello_orchestrator(context: df.DurableOrchestrationContext) -> str:
        return "done"

    @app.entity_trigger(context_name="context")
    def counter(context: df.DurableEntityContext) -> None:
        context.set_state(0)

    return app


@dataclass
class Harness:
    http: TestClient[Any, Any]
    web: aiohttp.ClientSession  # for the absolute URLs the payloads hand out
    backend: FakeBackend
    client: df.DurableOrchestrationClient
    request: func.HttpRequest


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    captured: list[Captured] = []
    index = index_app(_app(captured))
    backend = FakeBackend(orchestrators=tuple(index.orchestrators), entity_names=("counter",))
    server = TestServer(create_web_app(index, backend))
    async with TestClient(server) as http, aiohttp.ClientSession() as web:
        assert (await http.get("/api/capture")).status == 200
        yield Harness(http, web, backend, captured[0].client, captured[0].request)
        # The SDK keeps one module-level session; each test has its own event loop.
        await http_utils._close_session()


async def test_start_new_stores_the_double_encoded_input(harness: Harness) -> None:
    instance_id = await harness.client.start_new("hello_orchestrator", client_input={"a": 1})
    named = await harness.client.start_new("Hello_Orchestrator", "order-7", [1, 2])

    assert instance_id in harness.backend.instances
    assert named == "order-7"
    assert harness.backend.calls_named("start_new") == [
        ("hello_orchestrator", None, '"{\\"a\\": 1}"'),
        ("Hello_Orchestrator", "order-7", '"[1, 2]"'),
    ]


async def test_start_new_of_an_unknown_orchestrator_raises_the_hosts_message(
    harness: Harness,
) -> None:
    with pytest.raises(Exception, match="'nope' doesn't exist"):
        await harness.client.start_new("nope")


async def test_get_status_reads_the_status_object(harness: Harness) -> None:
    instance_id = await harness.client.start_new("hello_orchestrator", client_input={"a": 1})
    harness.backend.instances[instance_id].runtime_status = "Running"
    harness.backend.instances[instance_id].custom_status = {"step": 2}

    status = await harness.client.get_status(instance_id)
    missing = await harness.client.get_status("ghost")

    assert status.instance_id == instance_id
    assert status.runtime_status == df.OrchestrationRuntimeStatus.Running
    assert status.input_ == '{"a": 1}'  # what get_input() gives the orchestrator, too
    assert status.custom_status == {"step": 2}
    assert status.created_time == datetime(2024, 1, 1, tzinfo=UTC)
    assert not missing  # the SDK's "not found": a falsy status object


async def test_get_status_by_filters_on_the_server(harness: Harness) -> None:
    harness.backend.put_instance("run-1", "Running")
    harness.backend.put_instance("done-1", "Completed")

    running = await harness.client.get_status_by(
        runtime_status=[df.OrchestrationRuntimeStatus.Running]
    )
    everything = await harness.client.get_status_all()

    assert [s.instance_id for s in running] == ["run-1"]
    assert sorted(s.instance_id for s in everything) == ["done-1", "run-1"]


async def test_raise_event_delivers_the_json_string(harness: Harness) -> None:
    harness.backend.put_instance("i1", "Running")
    harness.backend.put_instance("done", "Completed")

    await harness.client.raise_event("i1", "Approve", {"ok": True})

    assert harness.backend.calls_named("raise_event") == [("i1", "Approve", '"{\\"ok\\": true}"')]
    with pytest.raises(Exception, match="No instance with ID ghost found."):
        await harness.client.raise_event("ghost", "Approve", 1)
    with pytest.raises(Exception, match="Instance with ID done is gone"):
        await harness.client.raise_event("done", "Approve", 1)


async def test_terminate_suspend_resume_and_rewind(harness: Harness) -> None:
    harness.backend.put_instance("i1", "Running")
    harness.backend.put_instance("failed", "Failed")

    await harness.client.suspend("i1", "pause please")
    await harness.client.resume("i1", "go on")
    await harness.client.terminate("i1", "no longer needed & done")
    await harness.client.terminate("i1", "again")  # 410 is accepted silently
    await harness.client.rewind("failed", "retry")

    assert harness.backend.calls_named("suspend") == [("i1", "pause please")]
    assert harness.backend.calls_named("resume") == [("i1", "go on")]
    assert harness.backend.calls_named("terminate") == [("i1", "no longer needed & done")]
    assert harness.backend.instances["i1"].runtime_status == "Terminated"
    assert harness.backend.calls_named("rewind") == [("failed", "retry")]
    with pytest.raises(Exception, match="No instance with ID 'ghost' found."):
        await harness.client.terminate("ghost", "x")


async def test_restart_returns_the_payload_of_the_new_instance(harness: Harness) -> None:
    harness.backend.put_instance("old", "Completed", input_json='"x"')

    result: Any = await harness.client.restart("old")

    # SDK 1.7.0 returns the whole check-status payload, not just the ID.
    assert result["id"] in harness.backend.instances
    assert result["id"] != "old"


async def test_purge_one_and_by_filter(harness: Harness) -> None:
    harness.backend.put_instance("done", "Completed")
    harness.backend.put_instance("old", "Failed")

    first = await harness.client.purge_instance_history("done")
    again = await harness.client.purge_instance_history("done")
    by_filter = await harness.client.purge_instance_history_by(
        created_time_from=datetime(2023, 1, 1),
        runtime_status=[df.OrchestrationRuntimeStatus.Failed],
    )
    nothing_left = await harness.client.purge_instance_history_by(
        created_time_from=datetime(2023, 1, 1)
    )

    assert (first.instances_deleted, again.instances_deleted) == (1, 0)
    assert by_filter.instances_deleted == 1
    assert nothing_left.instances_deleted == 0
    created_from, _, statuses = harness.backend.calls_named("purge_many")[0]
    assert created_from == datetime(2023, 1, 1, tzinfo=UTC)
    assert statuses == ["Failed"]


async def test_signal_entity_and_read_entity_state(harness: Harness) -> None:
    harness.backend.entities[("counter", "k1")] = "5"

    await harness.client.signal_entity(df.EntityId("Counter", "k1"), "add", 5)
    await harness.client.signal_entity(df.EntityId("Counter", "k1"), "reset")
    found = await harness.client.read_entity_state(df.EntityId("Counter", "k1"))
    missing = await harness.client.read_entity_state(df.EntityId("Counter", "k2"))

    assert harness.backend.calls_named("signal_entity") == [
        ("counter", "k1", "add", '"5"'),  # the client double-encodes entity input too
        ("counter", "k1", "reset", None),
    ]
    assert (found.entity_exists, found.entity_state) == (True, 5)
    assert not missing.entity_exists
    with pytest.raises(Exception, match="unexpected status code 400"):
        await harness.client.signal_entity(df.EntityId("Nope", "k1"), "add")


async def test_every_url_of_the_sdk_check_status_response_works(harness: Harness) -> None:
    started = await harness.http.post("/api/orchestrators/hello_orchestrator", json={"n": 1})
    assert started.status == 202
    urls = await started.json()
    instance_id = urls["id"]
    backend = harness.backend
    backend.instances[instance_id].runtime_status = "Running"

    def fill(url: str, **values: str) -> str:
        for name, value in values.items():
            url = url.replace("{" + name + "}", quote(value))
        return url

    assert started.headers["Location"] == urls["statusQueryGetUri"]
    status = await harness.web.get(urls["statusQueryGetUri"])
    assert status.status == 202
    assert (await status.json())["input"] == '{"n": 1}'

    event = await harness.web.post(fill(urls["sendEventPostUri"], eventName="Go"), json=[1])
    assert event.status == 202
    for key in ("suspendPostUri", "resumePostUri", "terminatePostUri"):
        resp = await harness.web.post(fill(urls[key], text="by test"))
        assert resp.status == 202, key
    backend.instances[instance_id].runtime_status = "Failed"
    assert (await harness.web.post(fill(urls["rewindPostUri"], text="again"))).status == 202
    backend.instances[instance_id].runtime_status = "Completed"
    restarted = await harness.web.post(urls["restartPostUri"])
    assert restarted.status == 202
    purged = await harness.web.delete(urls["purgeHistoryDeleteUri"])
    assert (purged.status, await purged.json()) == (200, {"instancesDeleted": 1})

    assert backend.calls_named("raise_event") == [(instance_id, "Go", "[1]")]
    assert backend.calls_named("terminate") == [(instance_id, "by test")]
    assert backend.calls_named("rewind") == [(instance_id, "again")]
    assert backend.calls_named("restart") == [(instance_id, True)]


async def test_every_url_of_the_hosts_check_status_response_works(harness: Harness) -> None:
    started = await harness.http.post(
        "/runtime/webhooks/durabletask/orchestrators/hello_orchestrator/h1"
    )
    urls = await started.json()
    harness.backend.instances["h1"].runtime_status = "Running"

    assert "rewindPostUri" not in urls
    assert (await harness.web.get(urls["statusQueryGetUri"])).status == 202
    event_url = urls["sendEventPostUri"].replace("{eventName}", "E")
    assert (await harness.web.post(event_url, json={"approved": True})).status == 202
    for key in ("suspendPostUri", "resumePostUri", "terminatePostUri"):
        resp = await harness.web.post(urls[key].replace("{text}", "r"))
        assert resp.status == 202, key
    assert (await harness.web.post(urls["restartPostUri"])).status == 202
    assert (await harness.web.delete(urls["purgeHistoryDeleteUri"])).status == 200
