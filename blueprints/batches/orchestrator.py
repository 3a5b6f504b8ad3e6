"""The ``batch_job`` orchestrator: partition, process the chunks group by group, report.

The instance ID is the job ID. Progress is durable: every finished group (and, inside a group,
every finished chunk) is in a history, so after a crash the replay schedules only the chunks
that had not finished.

A ``cancel`` event makes the orchestrator flag the run as cancelled (an activity writes the
flag); chunk activities starting afterwards skip their work, the running group stops scheduling
and no further group starts. The report covers what was done.
"""

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from blueprints.batches.processing import failure_percent
from blueprints.log_fields import log_fields
from models.batches import (
    BatchCancelEvent,
    BatchChunkStats,
    BatchInput,
    BatchOutcome,
    BatchResult,
    BatchStage,
    BatchStatus,
    ChunkGroupInput,
    ChunkGroupResult,
    FlagCancelInput,
    PartitionInput,
    PartitionResult,
    WriteReportInput,
)
from models.common import parse_event
from models.registry import register_workflow

logger = logging.getLogger(__name__)

bp = df.Blueprint()

CANCEL_EVENT = "cancel"
# Chunks per sub-orchestration: enough to keep the window full most of the time, few enough
# that a group's history stays a few hundred events.
MIN_CHUNKS_PER_GROUP = 25

register_workflow("batch_job", BatchInput, events={CANCEL_EVENT: BatchCancelEvent})


class BatchFailedError(Exception):
    """The job's failure rate went over ``maxFailurePercent`` (the report is written)."""


def group_instance_id(job_id: str, group_index: int) -> str:
    """Return the instance ID of a job's chunk group."""
    return f"{job_id}:group:{group_index:04d}"


def report_url(job_id: str) -> str:
    """Return the route serving a job's report."""
    return f"/api/batches/{job_id}/report"


def _status(stage: BatchStage, total: int, chunks: list[BatchChunkStats]) -> dict[str, Any]:
    return BatchStatus(
        stage=stage,
        total_chunks=total,
        processed_chunks=len(chunks),
        failed_items=sum(chunk.failed for chunk in chunks),
        percent_complete=round(100.0 * len(chunks) / total, 1) if total else 100.0,
    ).to_wire()


@bp.orchestration_trigger(context_name="context")
def batch_job(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Run a batch job to its summary.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        Its input is a :class:`~models.batches.BatchInput` as JSON.

    Returns
    -------
    dict[str, Any]
        A :class:`~models.batches.BatchResult` as JSON.

    Raises
    ------
    BatchFailedError
        When the input cannot be read, or more than ``maxFailurePercent`` of the items failed
        (after the report was written).
    """
    request = BatchInput.model_validate(context.get_input(expected_type=dict))
    job_id = context.instance_id
    started_at = context.current_utc_datetime
    run_id = context.new_uuid()
    context.set_custom_status(_status(BatchStage.PARTITIONING, 0, []))
    partition = PartitionResult.model_validate(
        (
            yield context.call_activity(
                "partition_batch_input",
                PartitionInput(
                    job_id=job_id, data_source=request.data_source, batch_size=request.batch_size
                ).to_wire(),
            )
        )
    )
    if not partition.ok:
        raise BatchFailedError(f"{partition.error_code}: {partition.detail}")

    total = partition.chunk_count
    per_group = max(MIN_CHUNKS_PER_GROUP, 4 * request.max_parallelism)
    cancel = context.wait_for_external_event(CANCEL_EVENT)
    flagged = False
    chunks: list[BatchChunkStats] = []
    for group_index, first in enumerate(range(0, total, per_group)):
        if cancel.is_completed:
            break
        group_id = group_instance_id(job_id, group_index)
        status = _status(BatchStage.PROCESSING, total, chunks)
        context.set_custom_status({**status, "currentGroup": group_id})
        group = context.call_sub_orchestrator(
            "batch_chunk_group",
            ChunkGroupInput(
                job_id=job_id,
                run_id=run_id,
                first_chunk=first,
                last_chunk=min(first + per_group, total),
                batch_size=request.batch_size,
                total_items=partition.total_items,
                max_parallelism=request.max_parallelism,
            ).to_wire(),
            group_id,
        )
        winner = yield context.task_any([group, cancel])
        if winner is cancel:
            reason = parse_event(BatchCancelEvent, cancel.result).reason
            context.set_custom_status({**_status(BatchStage.CANCELLING, total, chunks)})
            flag = FlagCancelInput(job_id=job_id, run_id=run_id, reason=reason)
            yield context.call_activity("request_batch_cancel", flag.to_wire())
            flagged = True
            yield group
        chunks.extend(ChunkGroupResult.model_validate(group.result).chunks)
    cancelled = flagged or cancel.is_completed

    context.set_custom_status(_status(BatchStage.REPORTING, total, chunks))
    processed = sum(chunk.processed for chunk in chunks)
    failed = sum(chunk.failed for chunk in chunks)
    percent = failure_percent(failed, processed)
    over_limit = percent > request.max_failure_percent
    outcome = BatchOutcome.CANCELLED if cancelled else BatchOutcome.SUCCEEDED
    if over_limit:
        outcome = BatchOutcome.FAILED
    summary = BatchResult(
        job_id=job_id,
        outcome=outcome,
        total_items=partition.total_items,
        total_processed=processed,
        total_success=processed - failed,
        total_failed=failed,
        failure_percent=percent,
        chunks=total,
        chunks_processed=len(chunks),
        duration_seconds=(context.current_utc_datetime - started_at).total_seconds(),
        report_url=report_url(job_id),
        error=(
            f"{percent}% of the processed items failed, over the limit of "
            f"{request.max_failure_percent}%"
            if over_limit
            else None
        ),
    )
    yield context.call_activity(
        "write_batch_report", WriteReportInput(summary=summary, chunks=chunks).to_wire()
    )
    context.set_custom_status(_status(BatchStage.DONE, total, chunks))
    if not context.is_replaying:
        logger.info(
            "batch_job ended %s",
            log_fields(
                instanceId=context.instance_id,
                workflow="batch_job",
                event="ended",
                outcome=outcome.value,
                items=summary.total_items,
                failed=summary.total_failed,
                durationMs=round(summary.duration_seconds * 1000),
            ),
        )
    if over_limit:
        raise BatchFailedError(
            f"Batch job {job_id} failed: {summary.error}; report at {summary.report_url}"
        )
    return summary.to_wire()
