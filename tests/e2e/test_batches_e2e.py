"""The batch workflow on the real host process with Azurite: kill -9 mid-batch, restart, and
only the chunks that had not finished run again."""

import time
from pathlib import Path
from typing import Any

import pytest
from e2e_client import request_with_headers, wait_for

from blueprints.batches import store

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.azurite, pytest.mark.host]

CHUNKS = 100
PARALLELISM = 4


def _finished_runs(job_id: str) -> list[dict[str, Any]]:
    return [run for run in store.chunk_runs(job_id) if run.get("FinishedAt")]


def test_a_killed_host_resumes_the_batch_running_only_unfinished_chunks(
    host_factory, app_storage: str
) -> None:
    host = host_factory(PROJECT, WORKFLOW_STORAGE_PREFIX=app_storage, BATCH_CHUNK_LATENCY_MS="120")
    items = [
        {
            "transactionId": f"T{n}",
            "customerId": "C1",
            "email": f"c{n}@example.com",
            "amount": 12.5,
            "currency": "usd",
            "country": "us",
            "occurredAt": "2024-05-01T10:00:00Z",
        }
        for n in range(CHUNKS * 5)
    ]
    status, payload, headers = request_with_headers(
        "POST",
        f"{host.base_url}/api/batches",
        {
            "jobId": "crash-1",
            "dataSource": {"items": items},
            "batchSize": 5,
            "maxParallelism": PARALLELISM,
        },
    )
    assert status == 202
    assert headers["Location"] == payload["statusQueryGetUri"]
    assert headers["Retry-After"]
    assert request_with_headers("GET", payload["statusQueryGetUri"])[0] == 202

    wait_for(lambda: len(_finished_runs("crash-1")) >= 40, 60, "40 chunks to finish")
    host.kill()
    killed_at = time.time()
    before = store.chunk_runs("crash-1")
    finished_before = {run["ChunkIndex"] for run in before if run.get("FinishedAt")}

    host.start()
    final = wait_for(
        lambda: (
            (r := request_with_headers("GET", f"{host.base_url}/api/batches/crash-1"))[0] == 200
            and r[1]
        ),
        120,
        "the batch to finish after the restart",
    )
    summary = final["summary"]
    assert summary["totalProcessed"] == CHUNKS * 5
    assert summary["chunksProcessed"] == CHUNKS

    runs = store.chunk_runs("crash-1")
    after = [run for run in runs if run["StartedAt"] > killed_at]
    rerun = {run["ChunkIndex"] for run in after} & finished_before
    assert {run["ChunkIndex"] for run in runs} == set(range(CHUNKS))
    # The restart schedules the chunks that had not finished; of those that had, only the
    # last few whose completion was not yet checkpointed may run again.
    assert len(after) <= CHUNKS - len(finished_before) + 2 * PARALLELISM
    assert len(rerun) <= 2 * PARALLELISM
    assert request_with_headers("GET", payload["statusQueryGetUri"])[0] == 200
