"""Timer triggers on the host process: the banner, a run with a durable client, the schedule
status in azure-webjobs-hosts, a missed occurrence after a restart, one runner per host ID."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from e2e_client import request_json

from tests.waiting import eventually_sync

APP = Path(__file__).parent / "apps" / "timers"
STATUS_BLOB = "timers/{host_id}/Host.Functions.tick/status"
pytestmark = pytest.mark.azurite


def _runs(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.fixture
def timer_host(host_factory, storage_path, tmp_path):  # type: ignore[no-untyped-def]
    """Start the timers app with its own host ID; returns (start, runs file, blob service)."""
    host_id = f"timers-{uuid.uuid4().hex[:12]}"
    out = tmp_path / "runs.jsonl"
    blobs = BlobServiceClient.from_connection_string(storage_path.env["AzureWebJobsStorage"])

    def start(schedule: str = "0 0 3 * * *"):  # type: ignore[no-untyped-def]
        return host_factory(
            APP,
            TICK_SCHEDULE=schedule,
            TIMER_TEST_OUT=str(out),
            AzureFunctionsWebHost__hostid=host_id,
        )

    yield start, out, blobs.get_container_client("azure-webjobs-hosts"), host_id
    blobs.close()


def test_a_timer_runs_on_startup_with_a_client_and_records_its_status(timer_host):
    """run_on_startup runs the function once at start; its client starts an orchestration
    through this host; the banner shows the schedule and the next occurrence; the status
    blob holds Last/Next/LastUpdated where the real host keeps it."""
    start, out, container, host_id = timer_host
    host = start()

    runs = eventually_sync(lambda: _runs(out), "the run on startup")
    assert runs[0]["pastDue"] is False
    instance = runs[0]["instance"]
    status_url = f"{host.base_url}/runtime/webhooks/durabletask/instances/{instance}"
    status = eventually_sync(
        lambda: (
            (s := request_json("GET", status_url)[1])
            and s.get("runtimeStatus") == "Completed"
            and s
        ),
        "the orchestration the timer started to complete",
    )
    assert status["output"] == "hello"

    # The banner comes after the port opens: wait for it.
    eventually_sync(
        lambda: "tick: timerTrigger (0 0 3 * * *, next " in host.log_path.read_text(),
        "the banner to list the timer with its next occurrence",
    )
    blob = container.get_blob_client(STATUS_BLOB.format(host_id=host_id))
    recorded = eventually_sync(
        lambda: blob.exists() and json.loads(blob.download_blob().readall()),
        "the status blob after the run",
    )
    assert set(recorded) == {"Last", "Next", "LastUpdated"}
    assert datetime.fromisoformat(recorded["Next"]).time().hour == 3


def test_an_occurrence_missed_while_no_host_ran_runs_once_past_due(timer_host):
    """A status whose Next has passed (the host was down at 03:00) makes the next start run
    the function at once with past_due true, and record the following occurrence."""
    start, out, container, host_id = timer_host
    now = datetime.now(UTC)
    missed = now.replace(hour=3, minute=0, second=0, microsecond=0)
    if missed > now:
        missed -= timedelta(days=1)
    container.upload_blob(
        STATUS_BLOB.format(host_id=host_id),
        json.dumps(
            {
                "Last": (missed - timedelta(days=1)).isoformat(),
                "Next": missed.isoformat(),
                "LastUpdated": (missed - timedelta(days=1)).isoformat(),
            }
        ),
        overwrite=True,
    )

    start()
    runs = eventually_sync(lambda: _runs(out), "the past-due run")

    assert len(runs) == 1
    assert runs[0]["pastDue"] is True
    assert runs[0]["status"]["Next"] == missed.isoformat()
    blob = container.get_blob_client(STATUS_BLOB.format(host_id=host_id))
    recorded = eventually_sync(
        lambda: (
            (r := json.loads(blob.download_blob().readall()))["Next"] != missed.isoformat() and r
        ),
        "the status after the past-due run",
    )
    assert datetime.fromisoformat(recorded["Next"]) == missed + timedelta(days=1)


def test_a_second_host_of_the_same_app_does_not_run_the_schedule(timer_host):
    """The listener lock (a blob lease): the second host waits for it and runs nothing."""
    start, out, container, host_id = timer_host
    start()
    eventually_sync(lambda: _runs(out), "the first host's run on startup")

    second = start()
    eventually_sync(
        lambda: (
            "tick: timerTrigger (0 0 3 * * *, waiting for its lock" in second.log_path.read_text()
        ),
        "the second host's banner to say the timer waits for its lock",
    )
    lease = container.get_blob_client(f"locks/{host_id}/Host.Functions.tick.Listener")
    assert lease.get_blob_properties().lease.state == "leased"
    assert len(_runs(out)) == 1
