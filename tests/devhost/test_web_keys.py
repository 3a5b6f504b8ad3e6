"""Access keys as the Functions host enforces them (``--enforce-keys``), in-process.

A small app with one route per auth level and a durable client that makes every kind of call,
served by the local host's front with a :class:`KeyGuard`, over the real engine.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from aiohttp.test_utils import TestClient, TestServer
from azure.durable_functions.models.utils import http_utils

from devhost.app.loader import index_app
from devhost.testing import DurableTestHost
from devhost.web.key_store import (
    BlobKeyStore,
    KeyGuard,
    MemoryKeyStore,
    add_function_key,
    default_host_id,
    load_or_create_host_keys,
)
from devhost.web.keys import HostKeys
from devhost.web.server import create_web_app


def _app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="open", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    async def open_route(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("open")

    @app.route(route="admin", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
    async def admin_route(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("admin")

    @app.route(route="other", methods=["GET"])
    async def other_route(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("other")

    @app.route(route="start", methods=["POST"])
    @app.durable_client_input(client_name="client")
    async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> Any:
        instance_id = await client.start_new("waiter", client_input={"n": 1})
        return client.create_check_status_response(req, instance_id)

    @app.route(route="drive/{instanceId}", methods=["POST"])
    @app.durable_client_input(client_name="client")
    async def drive(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> Any:
        """Every other kind of client call the app's routes make, through the binding."""
        instance_id = req.route_params["instanceId"]
        before = await client.get_status(instance_id)
        await client.raise_event(instance_id, "go", {"ok": True})
        await client.signal_entity(df.EntityId("tally", "k"), "add", 2)
        listed = await client.get_status_by(runtime_status=[])
        for _ in range(200):
            state = await client.read_entity_state(df.EntityId("tally", "k"))
            if state.entity_exists:
                break
            await asyncio.sleep(0.01)
        body = {
            "before": before.runtime_status.value,
            "listed": len(listed),
            "entity": state.entity_state,
        }
        return func.HttpResponse(json.dumps(body), mimetype="application/json")

    @app.orchestration_trigger(context_name="context")
    def waiter(context: df.DurableOrchestrationContext) -> Any:
        result = yield context.wait_for_external_event("go")
        return result

    @app.entity_trigger(context_name="context")
    def tally(context: df.DurableEntityContext) -> None:
        context.set_state((context.get_state(lambda: 0) or 0) + context.get_input())

    return app


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestClient[Any, Any], KeyGuard]]:
    async with DurableTestHost(index=index_app(_app())) as host:
        store = MemoryKeyStore()
        guard = await KeyGuard.open(store)
        client: TestClient[Any, Any] = TestClient(
            TestServer(create_web_app(host.index, host.engine, keys=guard))
        )
        await client.start_server()
        try:
            yield client, guard
        finally:
            await client.close()
            await http_utils._close_session()  # the SDK client's process-wide session


def _path(client: TestClient[Any, Any], url: str) -> str:
    return url.removeprefix(str(client.make_url("")).rstrip("/"))


async def test_a_function_route_without_a_valid_key_is_the_hosts_bare_401(served) -> None:
    client, guard = served
    for headers, params in [({}, {}), ({"x-functions-key": "nope"}, {}), ({}, {"code": "x"})]:
        response = await client.get("/api/other", headers=headers, params=params)
        assert response.status == 401
        assert await response.read() == b""
        assert "WWW-Authenticate" not in response.headers
    # A system key is not a function key (AuthUtility: the levels must match).
    response = await client.get("/api/other", params={"code": guard.system_key})
    assert response.status == 401


async def test_host_master_and_function_keys_open_function_routes(served) -> None:
    client, guard = served
    host_key = guard.host_keys.function_keys["default"]
    for headers, params in [
        ({"x-functions-key": host_key}, {}),
        ({"X-Functions-Key": guard.host_keys.master_key}, {}),
        ({}, {"code": host_key}),
        ({}, {"CODE": host_key}),
    ]:
        response = await client.get("/api/other", headers=headers, params=params)
        assert response.status == 200, (headers, params)


async def test_the_header_wins_over_the_query_string(served) -> None:
    client, guard = served
    host_key = guard.host_keys.function_keys["default"]
    response = await client.get(
        "/api/other", headers={"x-functions-key": "wrong"}, params={"code": host_key}
    )
    assert response.status == 401


async def test_a_function_key_opens_its_own_function_only(served) -> None:
    client, guard = served
    key = await add_function_key(guard.store, "admin_route")
    other = await add_function_key(guard.store, "other_route")
    # Added after the guard loaded its keys: the first unknown key re-reads them.
    assert (await client.get("/api/other", params={"code": other})).status == 200
    assert (await client.get("/api/other", params={"code": key})).status == 401


async def test_admin_routes_need_the_master_key_and_anonymous_ones_nothing(served) -> None:
    client, guard = served
    host_key = guard.host_keys.function_keys["default"]
    assert (await client.get("/api/admin", params={"code": host_key})).status == 401
    master = guard.host_keys.master_key
    assert (await client.get("/api/admin", params={"code": master})).status == 200
    assert (await client.get("/api/open")).status == 200
    # Routing comes first: an unknown path is 404 with or without a key.
    assert (await client.get("/api/nowhere")).status == 404


async def test_the_webhook_needs_the_durable_system_key_or_the_master_key(served) -> None:
    client, guard = served
    url = "/runtime/webhooks/durabletask/instances"
    refused = await client.get(url, params={"code": guard.host_keys.function_keys["default"]})
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert await refused.read() == b""
    assert (await client.get(url)).status == 401
    assert (await client.get(url, params={"code": guard.system_key})).status == 200
    assert (await client.get(url, headers={"x-functions-key": guard.system_key})).status == 200
    assert (await client.get(url, params={"code": guard.host_keys.master_key})).status == 200


async def test_the_rpc_base_is_closed_without_the_bindings_token(served) -> None:
    client, guard = served
    assert (await client.get("/durabletask/instances/")).status == 404
    code = {"code": guard.system_key}
    assert (await client.get("/durabletask/instances/", params=code)).status == 404
    assert (await client.get(f"/durabletask/{guard.rpc_token}/instances/")).status == 200


async def test_the_client_binding_works_and_its_urls_carry_the_system_key(served) -> None:
    client, guard = served
    key = {"x-functions-key": guard.host_keys.function_keys["default"]}
    started = await client.post("/api/start", headers=key)
    assert started.status == 202
    links = await started.json()
    for name in ("statusQueryGetUri", "sendEventPostUri", "terminatePostUri"):
        assert links[name].endswith(f"&code={guard.system_key}"), name
    assert started.headers["Location"] == links["statusQueryGetUri"]

    # The status URL works as returned, without adding anything.
    status = await client.get(_path(client, links["statusQueryGetUri"]))
    assert status.status == 202

    driven = await client.post(f"/api/drive/{links['id']}", headers=key)
    assert driven.status == 200, await driven.text()
    body = await driven.json()
    assert body["before"] == "Running" and body["listed"] >= 1 and body["entity"] == 2

    deadline = asyncio.get_running_loop().time() + 10
    while (done := await client.get(_path(client, links["statusQueryGetUri"]))).status != 200:
        assert asyncio.get_running_loop().time() < deadline, "the instance never completed"
        await asyncio.sleep(0.02)
    # The client encodes event data twice, so the orchestrator got (and returned) JSON text.
    assert json.loads((await done.json())["output"]) == {"ok": True}


async def test_the_hosts_own_check_status_response_carries_the_key(served) -> None:
    client, guard = served
    started = await client.post(
        "/runtime/webhooks/durabletask/orchestrators/waiter",
        params={"code": guard.system_key},
        json={"n": 2},
    )
    assert started.status == 202
    links = await started.json()
    event_url = _path(client, links["sendEventPostUri"].replace("{eventName}", "go"))
    raised = await client.post(event_url, json={"ok": 1})
    assert raised.status == 202


async def test_keys_are_created_once_and_kept_in_the_hosts_format() -> None:
    store = MemoryKeyStore()
    first, second = await asyncio.gather(
        load_or_create_host_keys(store), load_or_create_host_keys(store)
    )
    assert first == second
    again = await load_or_create_host_keys(store)
    assert again == first
    stored = json.loads(store.host or "")
    assert stored["masterKey"] == {"name": "master", "value": first.master_key, "encrypted": False}
    assert {k["name"] for k in stored["systemKeys"]} == {"durabletask_extension"}
    assert len(first.master_key) == 56 and first.master_key.endswith("=")
    assert HostKeys.from_secrets_json(store.host or "") == first


def test_the_local_host_id_is_stable_and_follows_the_setting(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("AzureFunctionsWebHost__hostid", raising=False)
    monkeypatch.delenv("WEBSITE_SITE_NAME", raising=False)
    local = default_host_id(tmp_path)
    assert local == default_host_id(tmp_path) and len(local) <= 32 and local == local.lower()
    assert default_host_id(tmp_path / "other") != local
    monkeypatch.setenv("AzureFunctionsWebHost__hostid", "My-App")
    assert default_host_id(tmp_path) == "my-app"


@pytest.mark.azurite
async def test_keys_persist_in_the_secrets_container(azurite) -> None:
    store = BlobKeyStore(azurite.connection_string, "persist-test")
    try:
        created = await load_or_create_host_keys(store)
        function_key = await add_function_key(store, "Other_Route")
    finally:
        await store.close()
    reopened = BlobKeyStore(azurite.connection_string, "persist-test")
    try:
        guard = await KeyGuard.open(reopened)
    finally:
        await reopened.close()
    assert guard.host_keys == created
    assert guard._function_keys["other_route"]["default"] == function_key
