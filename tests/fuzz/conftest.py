"""The fuzz tests' host: the app on the local host as a process, on the session's Azurite.

One host serves the whole package (starting one costs seconds); every test ends by checking
that it still serves a workflow end to end and that its memory stayed bounded. Set
``FUZZ_LONG=1`` for the long run (thousands of requests), ``FUZZ_REPORT=path`` to write the
counts as JSON (docs/api.md quotes them) and ``FUZZ_HOST_LOG=path`` to keep the host's log.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.blueprints.orders.orders_harness import make_order
from tests.e2e.conftest import PROJECT, HostProcess
from tests.fuzz.checks import Tally

LONG = os.environ.get("FUZZ_LONG") == "1"
# The host may hold this much more memory after a run than after its warm-up.
MAX_RSS_GROWTH = 256 * 1024 * 1024


def budget(short: int, long: int) -> int:
    """How many of something to generate: ``short`` in ``./dev test``, ``long`` under FUZZ_LONG."""
    return long if LONG else short


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class FuzzHost:
    """The running host, its base URL, an HTTP session and its memory at the start."""

    def __init__(self, process: HostProcess) -> None:
        self.process = process
        self.base_url = process.base_url
        self.http = requests.Session()
        self.baseline_rss = 0

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def rss(self) -> int:
        """The host process's resident memory now, in bytes."""
        return _rss(self.pid)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.http.post(f"{self.base_url}{path}", json=body, timeout=60)

    def assert_healthy(self) -> None:
        """The host still runs a workflow end to end, and holds no more memory than allowed."""
        assert self.process.process is not None and self.process.process.poll() is None
        started = self.post("/api/orchestrators/hello_sequence", {"cities": ["Oslo"]})
        assert started.status_code == 202, started.text
        status_url = started.json()["statusQueryGetUri"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = self.http.get(status_url, timeout=30).json()
            if status["runtimeStatus"] == "Completed":
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"hello_sequence did not complete within 60 s: {status}")
        growth = self.rss() - self.baseline_rss
        assert growth < MAX_RSS_GROWTH, f"host memory grew by {growth // 2**20} MiB"


@pytest.fixture(scope="session")
def tally() -> Iterator[Tally]:
    """What every fuzz test sent and got back; written to FUZZ_REPORT at the end."""
    counts = Tally()
    yield counts
    report = os.environ.get("FUZZ_REPORT")
    if report and counts.requests:
        summary = counts.summary()
        summary["by_route"] = dict(sorted(counts.by_route.items()))
        summary["examples"] = {
            "server_errors": counts.server_errors[:20],
            "unshaped": counts.unshaped[:20],
            "leaks": counts.leaks[:20],
        }
        Path(report).write_text(json.dumps(summary, indent=2))


@pytest.fixture(scope="package")
def fuzz_host(azurite: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzHost]:
    """The app on the local host, with its own task hub and storage prefix."""
    suffix = uuid.uuid4().hex[:10]
    env = {
        "DEVHOST_TEST_LOG": os.environ.get("FUZZ_HOST_LOG")
        or str(tmp_path_factory.mktemp("fuzz") / "host.log"),
        "WORKFLOW_STORAGE_PREFIX": f"F{suffix}",
        # Document changes wait this long for their outcome before answering 202.
        "DOCUMENTS_UPDATE_WAIT_SECONDS": "0.3",
        # The seeded monitor checks a closed local port (monitors refuse loopback otherwise).
        "MONITOR_ALLOWED_HOSTS": "127.0.0.1",
    }
    process = HostProcess(PROJECT, azurite.connection_string, f"Fuzz{suffix}", env)
    process.start()
    host = FuzzHost(process)
    try:
        host.assert_healthy()  # warm up: every module imported, storage clients made
        host.baseline_rss = host.rss()
        yield host
    finally:
        host.http.close()
        process.stop()


ORDER = make_order("fuzz-order-1", [("SKU-F1", 1, 12.5)])


@pytest.fixture(scope="package")
def known(fuzz_host: FuzzHost) -> dict[str, str]:
    """Resources that exist, so generated requests also reach past the 404s: kind -> ID."""
    http, base = fuzz_host.http, fuzz_host.base_url
    seeds: list[tuple[str, str, Any]] = [
        ("POST", "/api/inventory/SKU-F1", {"quantity": 100}),
        ("POST", "/api/orders", ORDER),
        (
            "POST",
            "/api/documents",
            {"id": "fuzz-doc-1", "title": "Hire", "creator": "hr", "applicationId": "A-1"},
        ),
        ("POST", "/api/batches", {"jobId": "fuzz-job-1", "dataSource": {"items": [{"a": 1}]}}),
        ("POST", "/api/monitors", {"monitorId": "fuzz-mon-1", "url": "http://127.0.0.1:9/h"}),
        (
            "POST",
            "/api/approvals",
            {
                "requestId": "fuzz-req-1",
                "requestType": "expense",
                "requesterId": "u-1",
                "requesterEmail": "u1@example.com",
                "amount": 10,
                "approvalChain": [
                    {"level": 1, "approverEmail": "boss@example.com", "timeoutHours": 24}
                ],
            },
        ),
        ("POST", "/api/orchestrators/hello_sequence/fuzz-hello-1", {"cities": ["Oslo"]}),
    ]
    for method, path, body in seeds:
        response = http.request(method, f"{base}{path}", json=body, timeout=60)
        assert response.status_code in (200, 201, 202), f"{path}: {response.text}"
    human = http.post(f"{base}/api/start-approval", json={}, timeout=60).json()["id"]
    requests.put(f"{base}/api/batches/inputs/fuzz-input-1", data=b'{"a": 1}\n', timeout=60)
    return {
        "order": "fuzz-order-1",
        "document": "fuzz-doc-1",
        "job": "fuzz-job-1",
        "monitor": "fuzz-mon-1",
        "approval": "approval-fuzz-req-1",
        "human": human,
        "instance": "fuzz-hello-1",
        "sku": "SKU-F1",
        "input": "fuzz-input-1",
    }
