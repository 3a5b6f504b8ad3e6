"""How full the batch window stays: chunks in flight on average, from the chunk ledger.

Run: ``.venv/bin/python bench/batch_window.py [--chunks 80] [--parallelism 4] [--latency-ms 200]``.
Starts a private Azurite on free ports and the app on the local host as a process
(``python -m devhost start``, wall clock, checkpoints as in production), starts one batch job
over HTTP with one item per chunk and ``BATCH_CHUNK_LATENCY_MS`` of simulated work per chunk,
waits for it, then reads the ``BatchChunkRuns`` ledger: every execution of a chunk activity
with its start and end time.

* ``average_in_flight``: chunk-seconds of work / seconds from the first start to the last end;
* ``peak_in_flight``: the most chunks running at one moment (never above ``maxParallelism``);
* ``mean_chunk_seconds``: one chunk activity, start to end (the latency plus its storage calls);
* ``chunk_span_seconds`` against ``ideal_span_seconds`` (chunk-seconds / parallelism), and
  ``job_seconds`` (start request to the 200, partition and report included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devhost.azurite import free_ports, start_azurite  # noqa: E402


def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def item(number: int) -> dict[str, Any]:
    return {
        "transactionId": f"T{number}",
        "customerId": "C1",
        "email": f"c{number}@example.com",
        "amount": 12.5,
        "currency": "usd",
        "country": "us",
        "occurredAt": "2024-05-01T10:00:00Z",
    }


def ledger_numbers(runs: list[dict[str, Any]]) -> dict[str, float]:
    work = sum(run["FinishedAt"] - run["StartedAt"] for run in runs)
    span = max(run["FinishedAt"] for run in runs) - min(run["StartedAt"] for run in runs)
    edges = sorted(
        [(run["StartedAt"], 1) for run in runs] + [(run["FinishedAt"], -1) for run in runs]
    )
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return {
        "average_in_flight": round(work / span, 2),
        "peak_in_flight": peak,
        "span": span,
        "work": work,
        "mean_chunk": work / len(runs),
    }


def main(chunks: int, parallelism: int, latency_ms: int) -> None:
    blob, queue, table = free_ports(3)
    azurite = start_azurite(
        ROOT, Path(tempfile.mkdtemp(prefix="bench-azurite-")), (blob, queue, table)
    )
    prefix = "B" + uuid.uuid4().hex[:8]
    os.environ["AzureWebJobsStorage"] = azurite.connection_string
    os.environ["WORKFLOW_STORAGE_PREFIX"] = prefix
    from blueprints.batches import store

    (port,) = free_ports(1)
    env = {**os.environ, "BATCH_CHUNK_LATENCY_MS": str(latency_ms)}
    host = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devhost",
            "start",
            "--port",
            str(port),
            "--no-azurite",
            "--task-hub",
            "bench" + uuid.uuid4().hex[:8],
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/api/notifications?top=1", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        body = {
            "jobId": "window",
            "dataSource": {"items": [item(n) for n in range(chunks)]},
            "batchSize": 1,
            "maxParallelism": parallelism,
        }
        started = time.monotonic()
        status, payload = call("POST", f"{base}/api/batches", body)
        assert status == 202, payload
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status, payload = call("GET", f"{base}/api/batches/window")
            if status == 200:
                break
            time.sleep(0.1)
        job_seconds = time.monotonic() - started
        assert payload["summary"]["chunksProcessed"] == chunks, payload
        numbers = ledger_numbers(store.chunk_runs("window"))
    finally:
        host.terminate()
        host.wait(30)
        azurite.stop()
    results = {
        "chunks": chunks,
        "max_parallelism": parallelism,
        "chunk_latency_ms": latency_ms,
        "average_in_flight": numbers["average_in_flight"],
        "average_over_max": round(numbers["average_in_flight"] / parallelism, 2),
        "peak_in_flight": numbers["peak_in_flight"],
        "mean_chunk_seconds": round(numbers["mean_chunk"], 3),
        "chunk_span_seconds": round(numbers["span"], 2),
        "ideal_span_seconds": round(numbers["work"] / parallelism, 2),
        "job_seconds": round(job_seconds, 2),
    }
    for key, value in results.items():
        print(f"{key:20} {value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=80)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--latency-ms", type=int, default=200)
    options = parser.parse_args()
    main(options.chunks, options.parallelism, options.latency_ms)
