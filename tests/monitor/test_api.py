"""The monitor's JSON API and its guards, served in-process by the local host's front over the
real engine (memory store, virtual clock) running this app's orchestrators."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from devhost.monitor.launch import host_monitor
from devhost.monitor.payloads import MONITOR_PATH
from devhost.monitor.server import Monitor
from devhost.testing import DurableTestHost
from devhost.web.server import create_web_app

PROJECT = Path(__file__).resolve().parents[2]
API = MONITOR_PATH + "/api/"


class MonitorClient:
    """A test client of one monitor, with the page's token and origin for actions."""

    def __init__(self, client: TestClient[Any, Any], monitor: Monitor) -> None:
        self.client = client
        self.monitor = monitor
        self.origin = f"http://127.0.0.1:{client.port}"

    async def get(self, route: str, **params: Any) -> tuple[int, Any]:
        response = await self.client.get(API + route, params=params)
        return response.status, await response.json()

    async def post(
        self, route: str, body: Any, headers: dict[str, str] | None = None, **params: Any
    ) -> tuple[int, Any]:
        sent = {"Origin": self.origin, "X-Monitor-Token": self.monitor.token}
        sent.update(headers or {})
        response = await self.client.post(API + route, params=params, json=body, headers=sent)
        return response.status, await response.json()


@pytest.fixture
async def host() -> AsyncIterator[DurableTestHost]:
    async with DurableTestHost(PROJECT, virtual_time="manual") as test_host:
        yield test_host


async def _client(host: DurableTestHost, monitor: Monitor) -> MonitorClient:
    client: TestClient[Any, Any] = TestClient(
        TestServer(create_web_app(host.index, host.engine, host_page=monitor))
    )
    await client.start_server()
    host._http_clients.append(client)  # closed with the host
    return MonitorClient(client, monitor)


@pytest.fixture
async def monitor(host: DurableTestHost) -> MonitorClient:
    """The monitor as the local host serves it, with this app's plug-in."""
    return await _client(host, host_monitor(host.store, host.engine, PROJECT))


async def _waiting_approval(host: DurableTestHost) -> str:
    """A ``human_approval`` waiting for its event (and in the store), its instance ID."""
    instance_id = await host.start("human_approval", {"timeoutSeconds": 60})
    await host.wait_for_custom_status(instance_id, lambda status: bool(status))
    await host.engine.checkpoint()
    return instance_id


async def _settled(host: DurableTestHost, *instance_ids: str) -> None:
    for instance_id in instance_ids:
        await host.wait(instance_id)
    await host.idle()
    await host.engine.checkpoint()


async def test_the_list_pages_past_100_and_sorts(
    host: DurableTestHost, monitor: MonitorClient
) -> None:
    ids = [await host.start("hello_sequence", {"cities": [f"c{n}"]}) for n in range(130)]
    await _settled(host, *ids)

    status, first = await monitor.get("instances", limit="100")
    assert status == 200
    assert (first["total"], len(first["instances"])) == (130, 100)
    status, rest = await monitor.get("instances", limit="100", offset="100")
    assert len(rest["instances"]) == 30
    seen = [item["instanceId"] for item in first["instances"] + rest["instances"]]
    assert sorted(seen) == sorted(ids)

    status, by_id = await monitor.get("instances", sort="instanceId", order="asc", limit="500")
    assert [item["instanceId"] for item in by_id["instances"]] == sorted(ids)
    created = [item["createdTime"] for item in first["instances"]]
    assert created == sorted(created, reverse=True)  # newest first by default


async def test_the_filters_combine(host: DurableTestHost, monitor: MonitorClient) -> None:
    hello = await host.start("hello_sequence", {"cities": ["Oslo"]}, instance_id="greet-1")
    waiting = await host.start("human_approval", {"timeoutSeconds": 60}, instance_id="appr-1")
    await host.wait(hello)
    await host.wait_for_custom_status(waiting, lambda status: bool(status))
    await host.idle()
    await host.engine.checkpoint()

    async def ids(**params: str) -> list[str]:
        status, body = await monitor.get("instances", **params)
        assert status == 200, body
        return sorted(item["instanceId"] for item in body["instances"])

    assert await ids() == ["appr-1", "greet-1"]
    assert await ids(name="HUMAN") == ["appr-1"]
    assert await ids(runtimeStatus="Completed") == ["greet-1"]
    assert await ids(runtimeStatus="Running,Completed") == ["appr-1", "greet-1"]
    assert await ids(instanceIdPrefix="gre") == ["greet-1"]
    assert await ids(customStatus="awaiting_APPROVAL") == ["appr-1"]
    future = (host.now() + timedelta(days=1)).isoformat()
    assert await ids(createdFrom=future) == []
    assert await ids(createdTo=future, name="hello") == ["greet-1"]
    status, body = await monitor.get("instances", customStatus="awaiting")
    assert body["instances"][0]["description"] == "Awaiting approval"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "secret"}, "sort"),
        ({"runtimeStatus": "Running,Sleeping"}, "runtimeStatus"),
        ({"createdFrom": "yesterday"}, "createdFrom"),
        # A valid ISO time whose UTC value is in year 0 (it answered a bare 500).
        ({"createdFrom": "0001-01-01T00:00:00+01:00"}, "createdFrom"),
        ({"createdTo": "9999-12-31T23:59:59-01:00"}, "createdTo"),
        ({"limit": "5000"}, "limit"),
        ({"offset": "-1"}, "offset"),
    ],
)
async def test_a_bad_query_is_a_400_naming_the_field(
    monitor: MonitorClient, params: dict[str, str], field: str
) -> None:
    status, body = await monitor.get("instances", **params)
    assert status == 400
    assert body["error"]["details"][0]["field"] == field


async def test_an_instance_shows_its_values_timeline_and_allowed_actions(
    host: DurableTestHost, monitor: MonitorClient
) -> None:
    instance_id = await host.start("hello_sequence", {"cities": ["Tokyo", "Lima"]})
    await _settled(host, instance_id)
    status, body = await monitor.get("instance", id=instance_id)
    assert status == 200
    assert body["input"] == {"cities": ["Tokyo", "Lima"]}
    assert body["output"] == {"greetings": ["Hello Tokyo!", "Hello Lima!"]}
    assert [bar["name"] for bar in body["timeline"]["bars"]] == ["say_hello", "say_hello"]
    assert body["actions"] == ["restart", "purge"]
    status, body = await monitor.get("instance", id="no-such-thing")
    assert (status, body["error"]["code"]) == (404, "InstanceNotFound")


async def test_an_event_from_the_form_is_checked_against_its_model_then_raised(
    host: DurableTestHost, monitor: MonitorClient
) -> None:
    instance_id = await _waiting_approval(host)
    status, body = await monitor.get("instance", id=instance_id)
    schema = body["events"]["ApprovalEvent"]
    assert "approver" in schema["properties"]
    assert body["description"] == "Awaiting approval"

    status, body = await monitor.post(
        "instance/event", {"approver": "x" * 400}, id=instance_id, name="ApprovalEvent"
    )
    assert status == 400
    assert body["error"]["details"][0]["field"] == "approver"
    status, body = await monitor.post("instance/event", {}, id=instance_id, name="NoSuchEvent")
    assert (status, body["error"]["details"][0]["field"]) == (400, "name")

    status, body = await monitor.post(
        "instance/event", {"approver": "ana"}, id=instance_id, name="ApprovalEvent"
    )
    assert status == 202, body
    assert (await host.wait(instance_id))["output"] == "Approved"


async def test_actions_follow_the_instance_status(
    host: DurableTestHost, monitor: MonitorClient
) -> None:
    instance_id = await _waiting_approval(host)

    async def act(action: str) -> tuple[int, Any]:
        return await monitor.post(
            "instance/action", {"reason": "test"}, id=instance_id, action=action
        )

    assert (await act("resume"))[0] == 409  # not suspended
    assert (await act("suspend"))[0] == 202
    await host.idle()
    await host.engine.checkpoint()
    assert (await host.status(instance_id))["runtimeStatus"] == "Suspended"
    assert (await act("resume"))[0] == 202
    await host.idle()
    assert (await act("terminate"))[0] == 202
    assert (await host.wait(instance_id))["runtimeStatus"] == "Terminated"
    await host.engine.checkpoint()
    assert (await act("rewind"))[0] == 409  # only a failed instance is rewound
    assert (await act("bogus"))[0] == 400
    assert (await act("purge"))[0] == 202
    assert await host.status(instance_id) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-Monitor-Token": "guessed"}, "token"),
        ({"Origin": "http://evil.example"}, "Origin"),
        ({"Origin": ""}, "Origin"),
    ],
)
async def test_an_action_not_sent_by_the_page_is_refused(
    host: DurableTestHost, monitor: MonitorClient, headers: dict[str, str], reason: str
) -> None:
    instance_id = await _waiting_approval(host)
    status, body = await monitor.post(
        "instance/action", {}, headers=headers, id=instance_id, action="terminate"
    )
    assert status == 403
    assert reason in body["error"]["message"]
    assert (await host.status(instance_id))["runtimeStatus"] == "Running"


async def test_a_form_post_from_another_site_is_refused(
    host: DurableTestHost, monitor: MonitorClient
) -> None:
    instance_id = await _waiting_approval(host)
    response = await monitor.client.post(
        API + "instance/action",
        params={"id": instance_id, "action": "terminate"},
        data="reason=x",
        headers={
            "Origin": monitor.origin,
            "X-Monitor-Token": monitor.monitor.token,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status == 403
    assert (await host.status(instance_id))["runtimeStatus"] == "Running"


async def test_only_this_machine_may_look(monitor: MonitorClient) -> None:
    response = await monitor.client.get(API + "info", headers={"Host": "rebound.example:80"})
    assert response.status == 403
    response = await monitor.client.get(MONITOR_PATH + "/", headers={"Host": "localhost:1"})
    assert response.status == 200
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_a_read_only_monitor_offers_and_takes_no_action(host: DurableTestHost) -> None:
    from devhost.monitor.guard import new_token
    from devhost.monitor.plugin import load_plugin
    from devhost.monitor.reader import HubReader

    monitor = await _client(
        host,
        Monitor(
            HubReader(host.store),
            load_plugin(PROJECT),
            None,
            token=new_token(),
            read_only_reason="Read-only (--read-only): no actions.",
        ),
    )
    instance_id = await _waiting_approval(host)
    status, body = await monitor.get("instance", id=instance_id)
    assert body["actions"] == []
    assert (await monitor.get("info"))[1]["readOnly"] is True
    status, body = await monitor.post("instance/action", {}, id=instance_id, action="terminate")
    assert (status, body["error"]["code"]) == (403, "ReadOnly")
    status, body = await monitor.post("instance/event", {}, id=instance_id, name="ApprovalEvent")
    assert (status, body["error"]["code"]) == (403, "ReadOnly")
    assert (await host.status(instance_id))["runtimeStatus"] == "Running"


async def test_entities_show_their_state(host: DurableTestHost, monitor: MonitorClient) -> None:
    app = await host.http()
    assert (await app.post("/api/inventory/SKU-9", json={"quantity": 4})).status == 202
    await host.idle()
    await host.engine.checkpoint()
    status, body = await monitor.get("entities", name="inventory")
    (entity,) = body["entities"]
    assert (entity["name"], entity["key"]) == ("inventory", "SKU-9")
    assert entity["state"]["available"] == 4
    assert (await monitor.get("entities", name="a@b"))[0] == 400


async def test_metrics_count_durations_and_failures_per_orchestrator(
    host: DurableTestHost, monitor: MonitorClient
) -> None:
    ids = [await host.start("hello_sequence", {"cities": ["x"]}) for _ in range(3)]
    timed_out = await host.start("human_approval", {"timeoutSeconds": 5})
    await host.wait_for_custom_status(timed_out, lambda status: bool(status))
    host.advance(timedelta(seconds=6))
    await _settled(host, *ids, timed_out)
    status, body = await monitor.get(
        "metrics", **{"from": (host.now() - timedelta(hours=1)).isoformat()}
    )
    assert status == 200
    names = {row["name"]: row for row in body["orchestrators"]}
    assert names["hello_sequence"]["counts"] == {"Completed": 3}
    assert names["hello_sequence"]["failureRate"] == 0
    (approval,) = body["approvals"]
    assert (approval["type"], approval["timeouts"], approval["timeoutRate"]) == (
        "human_approval",
        1,
        1.0,
    )
    assert sum(bucket["started"] for bucket in body["series"]["buckets"]) == 4
    status, body = await monitor.get(
        "metrics", **{"from": datetime.now(UTC).isoformat(), "to": "2020-01-01T00:00:00"}
    )
    assert (status, body["error"]["details"][0]["field"]) == (400, "from")


async def test_views_come_from_the_app_and_unknown_ones_are_404(monitor: MonitorClient) -> None:
    status, info = await monitor.get("info")
    assert [view["id"] for view in info["views"]] == ["documents", "orders", "approvals", "batches"]
    assert (await monitor.get("view", id="secrets"))[0] == 404


def test_the_page_scripts_are_valid_and_never_write_markup() -> None:
    scripts = sorted((PROJECT / "devhost" / "monitor" / "static").glob("*.js"))
    assert [script.name for script in scripts] == [
        "charts.js",
        "dom.js",
        "eventform.js",
        "monitor.js",
    ]
    for script in scripts:
        # --input-type: the files are ES modules whatever node guesses from the file name.
        subprocess.run(
            ["node", "--check", "--input-type=module"], input=script.read_bytes(), check=True
        )
        assert not re.search(
            r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script.read_text()
        ), script.name


def test_the_monitor_is_never_deployed() -> None:
    ignored = (PROJECT / ".funcignore").read_text().split()
    assert "devhost" in ignored and "monitor_views" in ignored
    function_app = (PROJECT / "function_app.py").read_text()
    assert "monitor_views" not in function_app and "devhost" not in function_app


async def test_with_keys_enforced_the_monitor_stays_this_machine_only(
    host: DurableTestHost,
) -> None:
    from devhost.web.key_store import KeyGuard, MemoryKeyStore

    guard = await KeyGuard.open(MemoryKeyStore())
    monitor = host_monitor(host.store, host.engine, PROJECT)
    client: TestClient[Any, Any] = TestClient(
        TestServer(create_web_app(host.index, host.engine, keys=guard, host_page=monitor))
    )
    await client.start_server()
    host._http_clients.append(client)
    # No key is asked of this machine (a page navigation cannot carry one)...
    assert (await client.get(API + "info")).status == 200
    # ...while the app's routes want theirs, and another host name is still refused.
    assert (await client.get("/runtime/webhooks/durabletask/instances")).status == 401
    assert (await client.get(API + "info", headers={"Host": "devbox.example"})).status == 403
