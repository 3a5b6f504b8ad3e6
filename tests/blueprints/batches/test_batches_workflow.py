"""The batch workflow run for real in-process: HTTP routes, replay, Azurite blobs and tables."""

import asyncio
import json
import time
from typing import Any

import pytest

from blueprints.batches import store
from devhost.testing import DurableTestHost

# Run once with a connection string and once identity-based (a token, no account key).
pytestmark = [pytest.mark.usefixtures("app_storage"), pytest.mark.both_storage_paths]


def record(number: int, valid: bool = True) -> dict[str, Any]:
    """A transaction record; an invalid one has a bad email and a negative amount."""
    return {
        "transactionId": f"T{number:06d}",
        "customerId": f"C{number % 97:04d}",
        "email": f"  Customer{number}@Example.COM " if valid else "not-an-email",
        "amount": round(10 + number * 0.25, 2) if valid else -5,
        "currency": "eur",
        "country": "de",
        "occurredAt": "2024-05-01T10:00:00+02:00",
    }


def records(count: int, invalid_every: int = 0) -> list[dict[str, Any]]:
    return [
        record(n, valid=not (invalid_every and n % invalid_every == invalid_every - 1))
        for n in range(count)
    ]


async def finished_job(client: Any, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll the friendly route until it answers 200 (it answers 202 while running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.get(f"/api/batches/{job_id}")
        if response.status == 200:
            body: dict[str, Any] = await response.json()
            return body
        assert response.status == 202
        assert response.headers["Retry-After"]
        assert response.headers["Location"].endswith(f"/api/batches/{job_id}")
        await asyncio.sleep(0.01)
    raise AssertionError(f"the job did not finish within {timeout:.0f} s")


def max_concurrency(runs: list[dict[str, Any]]) -> int:
    """The most chunk activities that were running at the same moment, from the ledger."""
    edges = sorted(
        [(run["StartedAt"], 1) for run in runs] + [(run["FinishedAt"], -1) for run in runs]
    )
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


async def test_inline_items_are_validated_normalised_and_reported() -> None:
    items = records(25, invalid_every=5)
    items.append("not an object")  # type: ignore[arg-type]
    async with DurableTestHost(".") as host:
        client = await host.http()
        response = await client.post(
            "/api/batches",
            json={
                "jobId": "inline-1",
                "dataSource": {"items": items},
                "batchSize": 4,
                "maxParallelism": 2,
                "maxFailurePercent": 50,
            },
        )
        assert response.status == 202
        assert response.headers["Location"] == (await response.json())["statusQueryGetUri"]
        assert response.headers["Retry-After"]

        body = await finished_job(client, "inline-1")
        summary = body["summary"]
        assert body["runtimeStatus"] == "Completed"
        assert summary["outcome"] == "succeeded"
        assert (summary["totalProcessed"], summary["totalSuccess"], summary["totalFailed"]) == (
            26,
            20,
            6,
        )
        assert summary["chunks"] == summary["chunksProcessed"] == 7
        assert summary["reportUrl"] == "/api/batches/inline-1/report"
        assert body["progress"]["percentComplete"] == 100.0

        report = await (await client.get(summary["reportUrl"])).json()
        assert [f["index"] for f in report["failures"]] == [4, 9, 14, 19, 24, 25]
        assert report["failures"][0]["errorCode"] == "invalid_record"
        assert "email" in report["failures"][0]["detail"]
        assert report["failures"][-1]["errorCode"] == "not_an_object"

    first = [
        json.loads(line) for line in store.read_text(store.output_blob("inline-1", 0)).split("\n")
    ]
    assert first[0]["record"] == {
        "transactionId": "T000000",
        "customerId": "C0000",
        "email": "customer0@example.com",
        "amount": "10.00",
        "currency": "EUR",
        "country": "DE",
        "occurredAt": "2024-05-01T08:00:00Z",
    }


async def test_a_job_reads_an_uploaded_json_lines_blob() -> None:
    lines = [json.dumps(item) for item in records(30)] + ["{broken", ""]
    async with DurableTestHost(".") as host:
        client = await host.http()
        upload = await client.put("/api/batches/inputs/may.jsonl", data="\n".join(lines))
        assert upload.status == 201
        assert await upload.json() == {
            "blobName": "inputs/may.jsonl",
            "items": 31,
            "bytes": len("\n".join(lines)),
        }

        start = await client.post(
            "/api/batches",
            json={
                "jobId": "blob-1",
                "dataSource": {"blobName": "inputs/may.jsonl"},
                "batchSize": 10,
            },
        )
        assert start.status == 202
        summary = (await finished_job(client, "blob-1"))["summary"]
        assert (summary["totalProcessed"], summary["totalFailed"], summary["chunks"]) == (31, 1, 4)
        report = await (await client.get("/api/batches/blob-1/report")).json()
        assert report["failures"][0]["errorCode"] == "malformed_json"


async def test_parallelism_bound_is_kept_and_the_window_stays_full(monkeypatch) -> None:
    monkeypatch.setenv("BATCH_CHUNK_LATENCY_MS", "40")
    async with DurableTestHost(".") as host:
        client = await host.http()
        await client.post(
            "/api/batches",
            json={
                "jobId": "bound-1",
                "dataSource": {"items": records(60)},
                "batchSize": 2,
                "maxParallelism": 3,
            },
        )
        summary = (await finished_job(client, "bound-1"))["summary"]
    assert summary["chunksProcessed"] == 30
    runs = store.chunk_runs("bound-1")
    assert sorted(run["ChunkIndex"] for run in runs) == list(range(30))
    assert max_concurrency(runs) == 3


async def test_failures_over_the_threshold_fail_the_job_with_the_report_written() -> None:
    async with DurableTestHost(".") as host:
        client = await host.http()
        for job_id, limit in (("under-1", 10.0), ("over-1", 5.0)):
            response = await client.post(
                "/api/batches",
                json={
                    "jobId": job_id,
                    "dataSource": {"items": records(40, invalid_every=10)},
                    "batchSize": 8,
                    "maxFailurePercent": limit,
                },
            )
            assert response.status == 202
        under = await finished_job(client, "under-1")
        over = await finished_job(client, "over-1")

        assert under["runtimeStatus"] == "Completed"
        assert under["summary"]["outcome"] == "succeeded"
        assert under["summary"]["failurePercent"] == 10.0

        assert over["runtimeStatus"] == "Failed"
        assert "10.0% of the processed items failed, over the limit of 5.0%" in over["error"]
        assert over["summary"]["outcome"] == "failed"
        assert over["summary"]["totalFailed"] == 4
        report = await (await client.get("/api/batches/over-1/report")).json()
        assert len(report["failures"]) == 4


async def test_ten_thousand_items_with_small_histories() -> None:
    async with DurableTestHost(".") as host:
        client = await host.http()
        response = await client.post(
            "/api/batches",
            json={
                "jobId": "big-1",
                "dataSource": {"items": records(10_000, invalid_every=100)},
                "batchSize": 100,
                "maxParallelism": 8,
            },
        )
        assert response.status == 202
        summary = (await finished_job(client, "big-1"))["summary"]
        assert summary["totalProcessed"] == 10_000
        assert summary["totalFailed"] == 100
        assert summary["chunksProcessed"] == 100

        job = await host.status("big-1", history=True)
        assert job is not None and len(job["historyEvents"]) < 40
        for group in range(4):
            status = await host.status(f"big-1:group:{group:04d}", history=True)
            assert status is not None and len(status["historyEvents"]) < 200
    assert len(store.chunk_runs("big-1")) == 100


async def test_cancel_stops_scheduling_and_reports_what_was_done(monkeypatch) -> None:
    monkeypatch.setenv("BATCH_CHUNK_LATENCY_MS", "30")
    async with DurableTestHost(".") as host:
        client = await host.http()
        await client.post(
            "/api/batches",
            json={
                "jobId": "cancel-1",
                "dataSource": {"items": records(80)},
                "batchSize": 2,
                "maxParallelism": 2,
            },
        )
        await host.wait_for_custom_status(
            "cancel-1:group:0000", lambda status: status and status["processedChunks"] >= 4
        )
        response = await client.post("/api/batches/cancel-1/cancel", json={"reason": "wrong file"})
        assert response.status == 202
        body = await finished_job(client, "cancel-1")

        summary = body["summary"]
        assert summary["outcome"] == "cancelled"
        assert 4 <= summary["chunksProcessed"] < 40
        again = await client.post("/api/batches/cancel-1/cancel")
        assert again.status == 410

    runs = store.chunk_runs("cancel-1")
    worked = [run for run in runs if not run["Skipped"]]
    assert len(worked) == summary["chunksProcessed"]
    # Only chunks started after the flag are skipped, and the window stops at the first one.
    assert len(runs) - len(worked) <= 2
