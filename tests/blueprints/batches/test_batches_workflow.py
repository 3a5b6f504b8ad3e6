"""The batch workflow run for real in-process: HTTP routes, replay, Azurite blobs and tables."""

import asyncio
import json
import time
from typing import Any

import pytest

from blueprints.app_storage import blob_container
from blueprints.batches import store
from blueprints.batches.activities import partition_batch_input, process_batch_chunk
from devhost.testing import DurableTestHost
from tests.waiting import eventually

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

    async def finished() -> dict[str, Any] | None:
        response = await client.get(f"/api/batches/{job_id}")
        if response.status == 200:
            body: dict[str, Any] = await response.json()
            return body
        assert response.status == 202
        assert response.headers["Retry-After"]
        assert response.headers["Location"].endswith(f"/api/batches/{job_id}")
        return None

    return await eventually(finished, f"batch job {job_id} to finish", timeout=timeout)


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


def average_in_flight(runs: list[dict[str, Any]]) -> float:
    """Chunk-seconds of work over the wall time from the first start to the last end."""
    work = sum(run["FinishedAt"] - run["StartedAt"] for run in runs)
    span = max(run["FinishedAt"] for run in runs) - min(run["StartedAt"] for run in runs)
    return work / span


async def test_inline_items_are_validated_normalised_and_reported(
    async_durable_host: DurableTestHost,
) -> None:
    items = records(25, invalid_every=5)
    items.append("not an object")  # type: ignore[arg-type]
    client = await async_durable_host.http()
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


async def test_a_time_outside_the_utc_range_fails_its_item_only(
    async_durable_host: DurableTestHost,
) -> None:
    items = records(4)
    items[1]["occurredAt"] = "0001-01-01T00:00:00+01:00"  # year 0 once in UTC
    client = await async_durable_host.http()
    response = await client.post(
        "/api/batches",
        json={"jobId": "utc-edge-1", "dataSource": {"items": items}, "maxFailurePercent": 50},
    )
    assert response.status == 202

    summary = (await finished_job(client, "utc-edge-1"))["summary"]
    assert (summary["totalSuccess"], summary["totalFailed"]) == (3, 1)
    report = await (await client.get(summary["reportUrl"])).json()
    assert [(f["index"], f["errorCode"]) for f in report["failures"]] == [(1, "invalid_record")]
    assert "occurredAt" in report["failures"][0]["detail"]


async def test_a_job_reads_an_uploaded_json_lines_blob(async_durable_host: DurableTestHost) -> None:
    lines = [json.dumps(item) for item in records(30)] + ["{broken", ""]
    client = await async_durable_host.http()
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


async def test_parallelism_bound_is_kept_and_the_window_stays_full(
    async_durable_host: DurableTestHost, monkeypatch
) -> None:
    monkeypatch.setenv("BATCH_CHUNK_LATENCY_MS", "40")
    client = await async_durable_host.http()
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


@pytest.mark.durable_host(virtual_time=False)
async def test_the_window_keeps_max_parallelism_chunks_in_flight_for_the_whole_job(
    async_durable_host: DurableTestHost,
    monkeypatch,
) -> None:
    # Wall-clock timers: the window hands each new chunk to the host with a timer due at once,
    # and the virtual clock fires timers only when the engine has nothing else to do.
    monkeypatch.setenv("BATCH_CHUNK_LATENCY_MS", "400")
    client = await async_durable_host.http()
    response = await client.post(
        "/api/batches",
        json={
            "jobId": "window-1",
            "dataSource": {"items": records(80)},
            "batchSize": 1,
            "maxParallelism": 4,
        },
    )
    assert response.status == 202
    await async_durable_host.wait(
        "window-1", timeout=120
    )  # no polling: it would take CPU from the job
    summary = (await finished_job(client, "window-1"))["summary"]
    assert summary["chunksProcessed"] == 80
    runs = store.chunk_runs("window-1")
    assert sorted(run["ChunkIndex"] for run in runs) == list(range(80))
    assert max_concurrency(runs) == 4
    average = average_in_flight(runs)
    assert average >= 0.75 * 4, f"on average {average:.2f} chunks were in flight, not 3+"


async def test_failures_over_the_threshold_fail_the_job_with_the_report_written(
    async_durable_host: DurableTestHost,
) -> None:
    client = await async_durable_host.http()
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


async def test_ten_thousand_items_with_small_histories(async_durable_host: DurableTestHost) -> None:
    client = await async_durable_host.http()
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
    # 100 chunks of 100 items: generous, the suite also runs with both cores busy.
    summary = (await finished_job(client, "big-1", timeout=300))["summary"]
    assert summary["totalProcessed"] == 10_000
    assert summary["totalFailed"] == 100
    assert summary["chunksProcessed"] == 100

    job = await async_durable_host.status("big-1", history=True)
    assert job is not None and len(job["historyEvents"]) < 40
    # Groups of 10 x maxParallelism chunks: 80 and 20; a chunk costs its completion and
    # the hand-off timer's two events.
    for group, chunks in ((0, 80), (1, 20)):
        status = await async_durable_host.status(f"big-1:group:{group:04d}", history=True)
        assert status is not None and len(status["historyEvents"]) < 4 * chunks
    assert await async_durable_host.status("big-1:group:0002") is None
    assert len(store.chunk_runs("big-1")) == 100


async def test_cancel_stops_scheduling_and_reports_what_was_done(
    async_durable_host: DurableTestHost, monkeypatch
) -> None:
    monkeypatch.setenv("BATCH_CHUNK_LATENCY_MS", "30")
    client = await async_durable_host.http()
    await client.post(
        "/api/batches",
        json={
            "jobId": "cancel-1",
            "dataSource": {"items": records(80)},
            "batchSize": 2,
            "maxParallelism": 2,
        },
    )
    await async_durable_host.wait_for_custom_status(
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


async def test_the_failure_limit_stops_scheduling_as_soon_as_it_is_exceeded(
    async_durable_host: DurableTestHost,
) -> None:
    # 80 chunks of one invalid item, 10 % allowed: the 9th failure is over the limit for the
    # whole job (9 of 80 items), so at most the 2 chunks then in flight run after it.
    client = await async_durable_host.http()
    response = await client.post(
        "/api/batches",
        json={
            "jobId": "limit-1",
            "dataSource": {"items": [record(n, valid=False) for n in range(80)]},
            "batchSize": 1,
            "maxParallelism": 2,
            "maxFailurePercent": 10,
        },
    )
    assert response.status == 202
    body = await finished_job(client, "limit-1")
    assert body["runtimeStatus"] == "Failed"
    summary = body["summary"]
    assert summary["outcome"] == "failed"
    assert 9 <= summary["chunksProcessed"] <= 11
    assert summary["chunks"] == 80
    assert "scheduling stopped after" in body["error"]
    report = await (await client.get("/api/batches/limit-1/report")).json()
    assert len(report["failures"]) == summary["totalFailed"] == summary["chunksProcessed"]
    # The second group (chunks 40-79) never started.
    assert await async_durable_host.status("limit-1:group:0001") is None
    assert len(store.chunk_runs("limit-1")) == summary["chunksProcessed"]


async def test_progress_is_zero_until_the_chunks_exist() -> None:
    released = asyncio.Event()
    started = asyncio.Event()

    async def slow_partition(payload: dict[str, Any]) -> dict[str, Any]:
        # The host awaits an override that is a coroutine on its own loop.
        started.set()
        await released.wait()
        return await asyncio.to_thread(partition_batch_input, payload)

    overrides = {"partition_batch_input": slow_partition}
    async with DurableTestHost(".", activity_overrides=overrides) as host:
        client = await host.http()
        start = await client.post(
            "/api/batches", json={"jobId": "early-1", "dataSource": {"items": records(4)}}
        )
        assert start.status == 202
        async with asyncio.timeout(30):
            await started.wait()
        response = await client.get("/api/batches/early-1")
        assert response.status == 202
        progress = (await response.json())["progress"]
        released.set()
        assert progress["stage"] == "partitioning"
        assert progress["percentComplete"] == 0
        done = await finished_job(client, "early-1")
        assert done["progress"]["percentComplete"] == 100


async def test_a_start_naming_a_missing_input_blob_is_refused(
    async_durable_host: DurableTestHost,
) -> None:
    client = await async_durable_host.http()
    response = await client.post(
        "/api/batches",
        json={"jobId": "missing-1", "dataSource": {"blobName": "inputs/nope.jsonl"}},
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["details"][0]["field"] == "dataSource.blobName"
    assert error["details"][0]["code"] == "not_found"
    assert await async_durable_host.status("missing-1") is None


async def test_an_upload_that_is_not_utf8_is_refused(async_durable_host: DurableTestHost) -> None:
    good = json.dumps(record(1)).encode()
    latin1 = json.dumps(record(2)).replace("Customer2", "Müller").encode("latin-1")
    client = await async_durable_host.http()
    refused = await client.put("/api/batches/inputs/bad.jsonl", data=good + b"\n" + latin1)
    assert refused.status == 400
    error = (await refused.json())["error"]
    assert error["code"] == "InvalidEncoding"
    assert "line 2" in error["message"]
    assert store.read_text(store.input_blob("bad.jsonl")) is None


async def test_an_upload_with_a_byte_order_mark_is_read_as_utf8(
    async_durable_host: DurableTestHost,
) -> None:
    good = json.dumps(record(1)).encode()
    client = await async_durable_host.http()
    upload = await client.put(
        "/api/batches/inputs/bom.jsonl", data=b"\xef\xbb\xbf" + good + b"\n" + good
    )
    assert upload.status == 201
    assert (await upload.json())["items"] == 2
    await client.post(
        "/api/batches", json={"jobId": "bom-1", "dataSource": {"blobName": "inputs/bom.jsonl"}}
    )
    summary = (await finished_job(client, "bom-1"))["summary"]
    assert (summary["totalSuccess"], summary["totalFailed"]) == (2, 0)


async def test_a_blob_written_past_the_upload_route_that_is_not_utf8_fails_the_job_clearly(
    async_durable_host: DurableTestHost,
) -> None:
    raw = json.dumps(record(1)).encode() + b"\n\xff{}"
    blob_container(store.BATCH_CONTAINER).upload_blob(store.input_blob("raw.jsonl"), raw)
    client = await async_durable_host.http()
    await client.post(
        "/api/batches", json={"jobId": "raw-1", "dataSource": {"blobName": "inputs/raw.jsonl"}}
    )
    body = await finished_job(client, "raw-1")
    assert body["runtimeStatus"] == "Failed"
    assert "invalid_encoding" in body["error"]
    assert "line 2 is not valid UTF-8" in body["error"]


@pytest.mark.durable_host(virtual_time=False)
async def test_a_cancel_during_a_later_group_stops_it_within_a_few_chunks(
    async_durable_host: DurableTestHost, monkeypatch
) -> None:
    # The cancel flag is an action after the group's own; without the hand-off the host held it
    # back until the whole group had run.
    monkeypatch.setenv("BATCH_CHUNK_LATENCY_MS", "60")
    client = await async_durable_host.http()
    await client.post(
        "/api/batches",
        json={
            "jobId": "cancel-2",
            "dataSource": {"items": records(120)},
            "batchSize": 1,
            "maxParallelism": 2,
        },
    )
    await async_durable_host.wait_for_custom_status(
        "cancel-2:group:0001",
        lambda status: status and status["processedChunks"] >= 2,
        timeout=60,
    )
    cancelled_at = time.time()
    response = await client.post("/api/batches/cancel-2/cancel", json={"reason": "stop"})
    assert response.status == 202
    summary = (await finished_job(client, "cancel-2"))["summary"]
    assert summary["outcome"] == "cancelled"
    worked_after = [
        run
        for run in store.chunk_runs("cancel-2")
        if run["StartedAt"] > cancelled_at and not run["Skipped"]
    ]
    assert len(worked_after) <= 8, f"{len(worked_after)} chunks started after the cancel"


async def test_a_chunk_processed_before_a_cancel_and_run_again_after_a_crash_is_counted() -> None:
    # A chunk activity wrote its output, the job then took a cancel, and a crash took the
    # chunk's result from the orchestration's history: the activity runs again and finds the
    # flag. A chunk begun before the cancel is done and counted (the chaos run found such
    # output counted zero times); one never begun is skipped.
    job_id, run_id = "crashed-1", "run-1"
    lines = [json.dumps(record(n, valid=n != 1)) for n in range(3)]
    store.write_text(store.chunk_blob(job_id, 0), "\n".join(lines))
    store.write_text(store.chunk_blob(job_id, 1), "\n".join(lines))
    chunk = {"jobId": job_id, "runId": run_id, "chunkIndex": 0, "firstItem": 0}
    first = await asyncio.to_thread(process_batch_chunk, chunk)
    assert (first["processed"], first["failed"]) == (3, 1)

    # Chunk 2 was begun and its execution killed before it recorded finishing.
    store.write_text(store.chunk_blob(job_id, 2), "\n".join(lines))
    store.start_chunk_run(job_id, run_id, 2)

    store.request_cancel(job_id, run_id, "stop")
    again = await asyncio.to_thread(process_batch_chunk, chunk)
    never_run = await asyncio.to_thread(process_batch_chunk, {**chunk, "chunkIndex": 1})
    killed = await asyncio.to_thread(process_batch_chunk, {**chunk, "chunkIndex": 2})

    assert again == first
    assert (killed["processed"], killed["skipped"]) == (3, False)
    assert never_run["skipped"] is True and never_run["processed"] == 0
    # Another run of the same job ID does not count this run's output.
    other_run = await asyncio.to_thread(process_batch_chunk, {**chunk, "runId": "run-2"})
    assert other_run["processed"] == 3  # not cancelled: it processes the chunk itself


async def test_the_run_id_is_chosen_at_the_start_and_keys_every_chunk_of_the_run() -> None:
    # A run's ID keys its cancel flag and its chunk ledger. The start route chooses it and puts
    # it in the input: an episode that a crash lost runs again with another timestamp, and an
    # ID drawn there (new_uuid) differs from the one the lost episode's chunks recorded (the
    # chaos run found a cancelled job whose chunks, processed by the lost episode, were then
    # skipped under the second ID and never counted).
    async with DurableTestHost(".") as host:
        client = await host.http()
        response = await client.post(
            "/api/batches",
            json={"jobId": "runid-1", "dataSource": {"items": records(6)}, "batchSize": 2},
        )
        assert response.status == 202
        await finished_job(client, "runid-1")
        status = await host.status("runid-1")
        assert status is not None
        run_id = json.loads(status["input"])["runId"]

    assert {run["RunId"] for run in store.chunk_runs("runid-1")} == {run_id}
