"""The read model of ``GET /api/batches/{jobId}``: progress per chunk, then the summary.

The job's own custom status moves once per group; the running group's custom status moves once
per chunk. The view adds the two, so a caller sees progress chunk by chunk. Reads are defensive:
a status the view cannot parse shows as no progress rather than failing the request.
"""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from pydantic import ValidationError

from blueprints.app_storage import in_thread
from blueprints.async_api import is_finished, runtime_status_name
from blueprints.batches import store
from models.batches import BatchStage, BatchStatus
from models.common import decode_json_text

__all__ = ["batch_view"]


def _parse_status(value: Any) -> BatchStatus | None:
    try:
        return BatchStatus.model_validate(decode_json_text(value))
    except ValidationError:
        return None


async def _progress(
    client: df.DurableOrchestrationClient, status: DurableOrchestrationStatus
) -> dict[str, Any] | None:
    job = _parse_status(status.custom_status)
    if job is None:
        return None
    if job.current_group and not is_finished(status):
        group_status = await client.get_status(job.current_group)
        group = _parse_status(group_status.custom_status) if group_status else None
        if group is not None:
            job.processed_chunks += group.processed_chunks
            job.failed_items += group.failed_items
            if group.stage in (BatchStage.CANCELLING, BatchStage.FAILING):
                job.stage = group.stage
    if job.total_chunks:
        job.percent_complete = round(100.0 * job.processed_chunks / job.total_chunks, 1)
    view = job.to_wire()
    view.pop("currentGroup", None)
    return view


async def _failed_summary(job_id: str) -> dict[str, Any] | None:
    text = await in_thread(store.read_text, store.report_blob(job_id))
    if text is None:
        return None
    summary: dict[str, Any] = json.loads(text).get("summary")
    return summary


async def batch_view(
    client: df.DurableOrchestrationClient, status: DurableOrchestrationStatus
) -> dict[str, Any]:
    """Return the job as ``GET /api/batches/{jobId}`` shows it.

    Parameters
    ----------
    client : azure.durable_functions.DurableOrchestrationClient
        The durable client (to read the running group's progress).
    status : azure.durable_functions.DurableOrchestrationStatus
        The job instance's status.

    Returns
    -------
    dict[str, Any]
        ``jobId``, ``runtimeStatus``, ``progress`` (the custom status, chunk by chunk),
        ``summary`` (the output; for a failed job, the report's summary) and ``error``.
    """
    job_id = status.instance_id
    name = runtime_status_name(status)
    summary = status.output if name == "Completed" else None
    error = None
    if name == "Failed":
        error = status.output
        summary = await _failed_summary(job_id)
    return {
        "jobId": job_id,
        "runtimeStatus": name,
        "progress": await _progress(client, status),
        "summary": summary,
        "error": error,
    }
