"""Where a batch job keeps its data: blob names, the cancel flag and the chunk-run ledger.

Layout (container ``batches``)::

    inputs/{name}                    uploaded inputs (JSON lines)
    jobs/{jobId}/input-{request}.jsonl  inline items staged by POST /api/batches
    jobs/{jobId}/chunks/{n}.jsonl    the items of chunk n (raw lines)
    jobs/{jobId}/output/{n}.jsonl    one ItemEnvelope per item of chunk n
    jobs/{jobId}/report.json         summary, per-chunk counts and every failed item

Every name is derived from the job and chunk, so a repeated activity overwrites what it wrote
before instead of adding to it.

Tables: ``BatchCancellations`` (PartitionKey job, RowKey run: present = cancel requested) and
``BatchChunkRuns`` (one row per execution of a chunk activity, with start and end times: which
chunks ran twice after a crash, and how many ran at once).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from blueprints.app_storage import blob_container, safe_key, table
from models.ids import check_blob_name, check_id

__all__ = [
    "BATCH_CONTAINER",
    "cancel_requested",
    "chunk_blob",
    "chunk_runs",
    "finish_chunk_run",
    "input_blob",
    "blob_exists",
    "output_blob",
    "read_bytes",
    "read_text",
    "report_blob",
    "request_cancel",
    "staged_input_blob",
    "start_chunk_run",
    "write_text",
]

BATCH_CONTAINER = "batches"
CANCEL_TABLE = "BatchCancellations"
RUNS_TABLE = "BatchChunkRuns"


INPUTS_PREFIX = "inputs/"


def input_blob(name: str) -> str:
    """Return the blob name of an uploaded input."""
    return INPUTS_PREFIX + check_id(name, "input")


def staged_input_blob(job_id: str, request_id: str) -> str:
    """Return the blob name inline items are staged under, one per start request (a start
    that loses a race must not replace the items of the one that won)."""
    return f"jobs/{check_id(job_id, 'job')}/input-{check_id(request_id, 'job')}.jsonl"


def chunk_blob(job_id: str, chunk_index: int) -> str:
    """Return the blob name of a chunk's items."""
    return f"jobs/{job_id}/chunks/{chunk_index:05d}.jsonl"


def output_blob(job_id: str, chunk_index: int) -> str:
    """Return the blob name of a chunk's item envelopes."""
    return f"jobs/{job_id}/output/{chunk_index:05d}.jsonl"


def report_blob(job_id: str) -> str:
    """Return the blob name of a job's report."""
    return f"jobs/{check_id(job_id, 'job')}/report.json"


def _container() -> ContainerClient:
    return blob_container(BATCH_CONTAINER)


def write_text(name: str, text: str, content_type: str = "application/x-ndjson") -> None:
    """Write (or overwrite) a blob of the batches container."""
    from azure.storage.blob import ContentSettings

    _container().upload_blob(
        check_blob_name(name),
        text.encode(),
        overwrite=True,
        content_settings=ContentSettings(content_type),
    )


def read_bytes(name: str) -> bytes | None:
    """Return a blob's content, or None when there is no such blob."""
    try:
        return _container().download_blob(check_blob_name(name)).readall()
    except ResourceNotFoundError:
        return None


def read_text(name: str) -> str | None:
    """Return the text of a blob this app wrote (UTF-8), or None when there is no such blob."""
    raw = read_bytes(name)
    return None if raw is None else raw.decode()


def blob_exists(name: str) -> bool:
    """Return whether the batches container holds a blob of that name."""
    return bool(_container().get_blob_client(check_blob_name(name)).exists())


def request_cancel(job_id: str, run_id: str, reason: str) -> None:
    """Flag a run of a job as cancelled; chunk activities starting after this skip their work."""
    table(CANCEL_TABLE).upsert_entity(
        {"PartitionKey": safe_key(job_id), "RowKey": safe_key(run_id), "Reason": reason}
    )


def cancel_requested(job_id: str, run_id: str) -> bool:
    """Return whether a run of a job was cancelled."""
    try:
        table(CANCEL_TABLE).get_entity(safe_key(job_id), safe_key(run_id))
    except ResourceNotFoundError:
        return False
    return True


def start_chunk_run(job_id: str, run_id: str, chunk_index: int) -> str:
    """Record that a chunk activity started; returns the ledger row's key."""
    row_key = f"{chunk_index:05d}:{uuid.uuid4().hex}"
    table(RUNS_TABLE).create_entity(
        {
            "PartitionKey": safe_key(job_id),
            "RowKey": row_key,
            "RunId": run_id,
            "ChunkIndex": chunk_index,
            "StartedAt": time.time(),
        }
    )
    return row_key


def finish_chunk_run(job_id: str, row_key: str, skipped: bool) -> None:
    """Record that a chunk activity finished (or skipped its work after a cancel)."""
    table(RUNS_TABLE).update_entity(
        {
            "PartitionKey": safe_key(job_id),
            "RowKey": row_key,
            "FinishedAt": time.time(),
            "Skipped": skipped,
        }
    )


def chunk_begun_before(job_id: str, run_id: str, chunk_index: int, row_key: str) -> bool:
    """Return whether another execution of a chunk activity of this run began the chunk's work
    (it did not skip it): its output may be written even if a crash took its result and, at
    an unlucky instant, its own record of finishing."""
    return any(
        row.get("RunId") == run_id
        and row.get("ChunkIndex") == chunk_index
        and row["RowKey"] != row_key
        and row.get("Skipped") is not True
        for row in chunk_runs(job_id)
    )


def chunk_runs(job_id: str) -> list[dict[str, Any]]:
    """Return every recorded execution of the job's chunk activities, in chunk order."""
    rows = table(RUNS_TABLE).query_entities(
        "PartitionKey eq @pk", parameters={"pk": safe_key(job_id)}
    )
    return [dict(row) for row in rows]
