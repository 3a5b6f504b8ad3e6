"""Storage goes away under a running host: Azurite is stopped with work in flight and clients
calling, then started again on the same ports and data. The host rides it out without a restart
of its own: what it acknowledged completes, it answers 503 with Retry-After (never 500) while
storage is down, and its log reports the outage once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_client import request_with_headers

from devhost.azurite import AzuriteProcess
from tests.conftest import _start_private_azurite
from tests.e2e.conftest import HostProcess

APPS = Path(__file__).parent / "apps"
API = "/runtime/webhooks/durabletask"
pytestmark = [pytest.mark.azurite, pytest.mark.host]


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[AzuriteProcess]:
    """An Azurite of this test's own (the test stops it), on free ports."""
    process = _start_private_azurite(tmp_path / "azurite")
    yield process
    process.stop()


class Client:
    """A client that keeps calling through the outage and remembers what was acknowledged."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.started: set[str] = set()
        self.approved: set[str] = set()
        self.refusals = 0
        self.statuses: list[int] = []

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
        status, payload, headers = request_with_headers(
            method, f"{self.base_url}{path}", body, timeout=60
        )
        self.statuses.append(status)
        assert status < 500 or status == 503, (status, method, path, payload)
        if status == 503:
            assert headers["Retry-After"] and int(headers["Retry-After"]) > 0
            assert "Traceback" not in str(payload)
            self.refusals += 1
        return status, payload, headers

    def start(self, instance_id: str) -> None:
        if instance_id in self.started:
            return
        status, _, _ = self._call(
            "POST", f"{API}/orchestrators/slow_chain/{instance_id}", {"steps": 3}
        )
        if status == 202:
            self.started.add(instance_id)

    def approve(self, instance_id: str) -> None:
        if instance_id in self.approved or instance_id not in self.started:
            return
        status, _, _ = self._call(
            "POST", f"{API}/instances/{instance_id}/raiseEvent/Approve", {"by": instance_id}
        )
        if status == 202:
            self.approved.add(instance_id)

    def runtime_status(self, instance_id: str) -> str | None:
        status, payload, _ = self._call("GET", f"{API}/instances/{instance_id}")
        return payload["runtimeStatus"] if status in (200, 202) and payload else None

    def round(self, number: int) -> None:
        """One round of calls: a new start, an approval, the status of everything started."""
        self.start(f"outage-{number:03d}")
        for instance_id in sorted(self.started - self.approved)[:2]:
            self.approve(instance_id)
        for instance_id in sorted(self.started)[-3:]:
            self.runtime_status(instance_id)


def test_the_host_rides_out_an_azurite_restart_and_loses_nothing(
    own_azurite: AzuriteProcess, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.touch()
    log_path = tmp_path / "host.log"
    host = HostProcess(
        APPS / "crashy",
        own_azurite.connection_string,
        "Outage",
        {
            "CRASHY_MARKS": str(marks),
            "CRASHY_STEP_SECONDS": "0.05",
            "DEVHOST_TEST_LOG": str(log_path),
        },
    )
    host.start()
    restarter = threading.Timer(4.0, own_azurite.start)
    try:
        client = Client(host.base_url)
        number = 0
        for _ in range(6):
            client.round(number)
            number += 1
        assert len(client.started) == 6

        # Azurite comes back on its own schedule: a client call may wait for storage (the
        # status of an instance that finished during the outage waits for its checkpoint).
        own_azurite.stop()
        restarter.start()
        while restarter.is_alive():
            client.round(number)
            number += 1
            time.sleep(0.1)
        restarter.join()
        assert own_azurite.process.poll() is None, "Azurite did not start again"
        refused_while_down = client.refusals
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            client.round(number)
            number += 1
            unfinished = [
                i for i in sorted(client.started) if client.runtime_status(i) != "Completed"
            ]
            if not unfinished and client.approved == client.started:
                break
            for instance_id in unfinished:
                client.approve(instance_id)
            time.sleep(0.2)
        else:
            raise AssertionError(f"unfinished after the outage: {unfinished}")
        for instance_id in client.started:
            status, payload, _ = client._call("GET", f"{API}/instances/{instance_id}")
            assert payload["output"] == {"results": [0, 1, 4], "approval": {"by": instance_id}}
    finally:
        host.stop()
        # A test that failed early must not leave the timer to start an Azurite nobody stops.
        restarter.cancel()
        if restarter.is_alive():
            restarter.join()

    assert refused_while_down > 0, "starts during the outage should have been refused (503)"
    assert len(client.started) > 6  # starts went on being accepted after the outage
    # Every acknowledged start ran all its steps and got its acknowledged approval.
    ran = [int(line) for line in marks.read_text().split()]
    assert set(ran) == {0, 1, 2}
    assert len(ran) >= 3 * len(client.started)
    log = log_path.read_text()
    assert log.count("Storage is unavailable") == 1, log[-3000:]
    assert log.count("Storage is available again") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
