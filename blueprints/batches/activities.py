"""Activities of the batch workflow: partition, process a chunk, flag a cancel, write the report.

Each one is idempotent: blob names derive from the job and chunk and are overwritten, the cancel
flag is an upsert. The chunk activity also appends one ledger row per execution (on purpose not
idempotent: it is the record of how often and how concurrently chunks really ran).
"""

import json
import logging
import os
import time

import azure.durable_functions as df

from blueprints.batches import store
from blueprints.batches.processing import (
    InvalidEncodingError,
    chunk_lines,
    decode_input,
    input_lines,
    process_lines,
    report_document,
)
from models.batches import (
    FlagCancelInput,
    PartitionInput,
    PartitionResult,
    ProcessChunkInput,
    ProcessChunkResult,
    WriteReportInput,
)

logger = logging.getLogger(__name__)

bp = df.Blueprint()

# Simulated downstream latency per chunk, for load tests and crash drills (a real chunk would
# call other systems); 0 in normal runs.
LATENCY_SETTING = "BATCH_CHUNK_LATENCY_MS"
_FAILURE_FIELDS = ("index", "errorCode", "detail")


@bp.activity_trigger(input_name="payload")
def partition_batch_input(payload: dict) -> dict:
    """Read the job's items and write them to chunk blobs.

    Parameters
    ----------
    payload : dict
        A :class:`~models.batches.PartitionInput` as JSON.

    Returns
    -------
    dict
        A :class:`~models.batches.PartitionResult` as JSON: the item and chunk counts, or
        ``ok: false`` with ``input_not_found`` when the input blob does not exist, or
        ``invalid_encoding`` when it is not UTF-8 text.
    """
    request = PartitionInput.model_validate(payload)
    source = request.data_source
    text = None
    if source.blob_name is not None:
        raw = store.read_bytes(source.blob_name)
        if raw is None:
            return PartitionResult(
                ok=False,
                error_code="input_not_found",
                detail=f"No blob '{source.blob_name}' in the '{store.BATCH_CONTAINER}' container.",
            ).to_wire()
        try:
            # A blob written past the upload route (Storage Explorer, azcopy) is checked here.
            text = decode_input(raw)
        except InvalidEncodingError as error:
            return PartitionResult(
                ok=False,
                error_code="invalid_encoding",
                detail=f"The input blob '{source.blob_name}': {error}.",
            ).to_wire()
    lines = input_lines(source.items, text)
    chunk_count = 0
    for chunk_count, chunk in enumerate(chunk_lines(lines, request.batch_size), start=1):
        store.write_text(store.chunk_blob(request.job_id, chunk_count - 1), "\n".join(chunk))
    return PartitionResult(total_items=len(lines), chunk_count=chunk_count).to_wire()


@bp.activity_trigger(input_name="payload")
def process_batch_chunk(payload: dict) -> dict:
    """Validate and normalise one chunk's items and write their envelopes to the output blob.

    Parameters
    ----------
    payload : dict
        A :class:`~models.batches.ProcessChunkInput` as JSON.

    Returns
    -------
    dict
        A :class:`~models.batches.ProcessChunkResult` as JSON (``skipped`` when the job was
        cancelled before the chunk started).

    Raises
    ------
    RuntimeError
        When the chunk blob is missing (a fault: the partition step wrote it).
    """
    request = ProcessChunkInput.model_validate(payload)
    run = store.start_chunk_run(request.job_id, request.run_id, request.chunk_index)
    if store.cancel_requested(request.job_id, request.run_id) and not store.chunk_begun_before(
        request.job_id, request.run_id, request.chunk_index, run
    ):
        store.finish_chunk_run(request.job_id, run, skipped=True)
        return ProcessChunkResult(chunk_index=request.chunk_index, skipped=True).to_wire()
    # A chunk begun before the cancel by an execution whose result a crash took from the
    # history is done again (its output is overwritten) and counted: else its output, perhaps
    # written, would be counted nowhere.
    latency = float(os.environ.get(LATENCY_SETTING) or 0) / 1000
    if latency > 0:
        time.sleep(latency)
    text = store.read_text(store.chunk_blob(request.job_id, request.chunk_index))
    if text is None:
        raise RuntimeError(f"chunk {request.chunk_index} of job {request.job_id} is missing")
    envelopes = process_lines(request.first_item, text.splitlines())
    store.write_text(
        store.output_blob(request.job_id, request.chunk_index),
        "\n".join(json.dumps(envelope.to_wire(), separators=(",", ":")) for envelope in envelopes),
    )
    failed = sum(1 for envelope in envelopes if not envelope.ok)
    store.finish_chunk_run(request.job_id, run, skipped=False)
    return ProcessChunkResult(
        chunk_index=request.chunk_index,
        processed=len(envelopes),
        succeeded=len(envelopes) - failed,
        failed=failed,
    ).to_wire()


@bp.activity_trigger(input_name="payload")
def request_batch_cancel(payload: dict) -> dict:
    """Flag a run of a job as cancelled (a :class:`~models.batches.FlagCancelInput`)."""
    request = FlagCancelInput.model_validate(payload)
    store.request_cancel(request.job_id, request.run_id, request.reason)
    return {"cancelled": True}


@bp.activity_trigger(input_name="payload")
def write_batch_report(payload: dict) -> dict:
    """Write the job's report blob: summary, per-chunk counts and every failed item.

    Parameters
    ----------
    payload : dict
        A :class:`~models.batches.WriteReportInput` as JSON.

    Returns
    -------
    dict
        ``{"blobName": ..., "failures": n}``.
    """
    request = WriteReportInput.model_validate(payload)
    job_id = request.summary.job_id
    failures = []
    for chunk in request.chunks:
        if not chunk.failed:
            continue
        text = store.read_text(store.output_blob(job_id, chunk.chunk_index)) or ""
        for line in text.splitlines():
            envelope = json.loads(line)
            if not envelope["ok"]:
                failures.append(
                    {key: envelope.get(key) for key in ("index", "errorCode", "detail")}
                )
    document = report_document(request.summary, request.chunks, failures)
    name = store.report_blob(job_id)
    store.write_text(name, json.dumps(document, indent=1), content_type="application/json")
    return {"blobName": name, "failures": len(failures)}
