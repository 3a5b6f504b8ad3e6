"""``python -m devhost monitor`` on a task hub in Azurite that another host runs: it reads the
hub's tables itself, acts through that host's management API, and with ``--read-only`` only
reads."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devhost.store.azure import AzureStore
from devhost.testing import DurableTestHost

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.azurite]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StandaloneMonitor:
    """The ``monitor`` command as a process; its page URL once it printed it."""

    def __init__(self, *args: str) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "monitor", "--port", str(self.port), *args],
            cwd=PROJECT,
            env={**os.environ, "PYTHONPATH": str(PROJECT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.url = ""

    async def started(self, timeout: float = 30) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        assert self.process.stdout is not None
        while loop.time() < deadline:
            line = await asyncio.wait_for(
                asyncio.to_thread(self.process.stdout.readline), deadline - loop.time()
            )
            match = re.match(r"Monitor: (\S+)", line)
            if match:
                self.url = match.group(1).replace("localhost", "127.0.0.1")
                return self.url
            if not line and self.process.poll() is not None:
                break
        raise AssertionError(f"the monitor did not start in {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


@pytest.fixture
async def running_hub(azurite: Any) -> AsyncIterator[tuple[DurableTestHost, str]]:
    """This app on an Azurite task hub, with its HTTP front listening (the "other host")."""
    hub = f"Solo{uuid.uuid4().hex[:12]}"
    store = AzureStore(azurite.connection_string, hub)
    async with DurableTestHost(PROJECT, store=store, task_hub=hub, virtual_time=False) as host:
        client = await host.http()
        yield host, f"http://127.0.0.1:{client.port}"
    await store.close()


async def _post_from_page(
    session: aiohttp.ClientSession, url: str, route: str, body: Any, **params: str
) -> int:
    """POST as the page does: its origin and the token it was served with; the status."""
    async with session.get(url) as response:
        page = await response.text()
    match = re.search(r'name="monitor-token" content="([^"]+)"', page)
    assert match, page[:300]
    headers = {"Origin": url.split("/_devhost")[0], "X-Monitor-Token": match.group(1)}
    async with session.post(url + route, params=params, json=body, headers=headers) as response:
        return response.status


async def test_the_command_reads_the_hub_and_acts_through_its_host(
    azurite: Any, running_hub: tuple[DurableTestHost, str]
) -> None:
    host, host_url = running_hub
    greeting = await host.start("hello_sequence", {"cities": ["Quito"]})
    approval = await host.start("human_approval", {"timeoutSeconds": 600})
    await host.wait(greeting)
    await host.wait_for_custom_status(approval, lambda status: bool(status))
    await host.engine._flush()

    monitor = StandaloneMonitor(
        "--connection",
        azurite.connection_string,
        "--task-hub",
        host.task_hub,
        "--app",
        str(PROJECT),
        "--host-url",
        host_url,
    )
    try:
        url = await monitor.started()
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "api/instances") as response:
                listed = {item["instanceId"] for item in (await response.json())["instances"]}
            assert listed == {greeting, approval}
            async with session.get(url + "api/instance", params={"id": greeting}) as response:
                body = await response.json()
            assert [bar["name"] for bar in body["timeline"]["bars"]] == ["say_hello"]

            status = await _post_from_page(
                session,
                url,
                "api/instance/event",
                {"approver": "ana"},
                id=approval,
                name="ApprovalEvent",
            )
            assert status == 202
        assert (await host.wait(approval))["output"] == "Approved"
    finally:
        monitor.stop()


async def test_read_only_refuses_actions(
    azurite: Any, running_hub: tuple[DurableTestHost, str]
) -> None:
    host, host_url = running_hub
    approval = await host.start("human_approval", {"timeoutSeconds": 600})
    await host.wait_for_custom_status(approval, lambda status: bool(status))
    await host.engine._flush()
    monitor = StandaloneMonitor(
        "--connection",
        azurite.connection_string,
        "--task-hub",
        host.task_hub,
        "--host-url",
        host_url,
        "--read-only",
    )
    try:
        url = await monitor.started()
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "api/info") as response:
                assert (await response.json())["readOnly"] is True
            status = await _post_from_page(
                session, url, "api/instance/action", {}, id=approval, action="terminate"
            )
            assert status == 403
        assert (await host.status(approval))["runtimeStatus"] == "Running"
    finally:
        monitor.stop()


async def test_a_hub_that_does_not_exist_is_an_empty_list_not_an_error(azurite: Any) -> None:
    monitor = StandaloneMonitor(
        "--connection", azurite.connection_string, "--task-hub", f"None{uuid.uuid4().hex[:8]}"
    )
    try:
        url = await monitor.started()
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "api/instances") as response:
                assert response.status == 200
                assert (await response.json())["total"] == 0
            async with session.get(url + "api/info") as response:
                info = await response.json()
        assert info["readOnly"] is True and "--host-url" in info["readOnlyReason"]
    finally:
        monitor.stop()


def test_without_a_connection_it_says_which_settings_it_looked_for() -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().startswith("azurewebjobsstorage")
    }
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "monitor", "--task-hub", "Hub1"],
        cwd=PROJECT,
        env={**env, "PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "AzureWebJobsStorage" in result.stderr and "Traceback" not in result.stderr
