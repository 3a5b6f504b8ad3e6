"""The ``batch_job`` orchestrator: partition, process the chunks group by group, report.

The instance ID is the job ID. Progress is durable: every finished group (and, inside a group,
every finished chunk) is in a history, so after a crash the replay schedules only the chunks
that had not finished.

A ``cancel`` event makes the orchestrator flag the run as cancelled (an activity writes the
flag); chunk activities starting afterwards skip their work, the running group stops scheduling
and no further group starts. The report covers what was done.

When the failed items are more than ``maxFailurePercent`` of all the job's items, the running
group stops scheduling at once (the job can no longer succeed), no further group starts, and
the job writes its report and ends Failed.

Not replay-compatible with jobs started before the hand-off timers and the failure-limit stop
came in (their histories hold no timers): let running jobs finish, or cancel them, before
deploying this version.
"""

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from blueprints.batches.processing import failure_percent
from blueprints.handoff import handoff_timer, settle_handoff
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
    GroupStop,
    PartitionInput,
    PartitionResult,
    WriteReportInput,
)
from models.common import parse_event
from models.registry import register_workflow

logger = logging.getLogger(__name__)

bp = df.Blueprint()

CANCEL_EVENT = "cancel"
# Chunks per sub-orchestration: the window drains at the end of each group, so groups are
# long (100+ chunks, 10 windows' worth), yet a group's history stays under a thousand events.
MIN_CHUNKS_PER_GROUP = 40

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
    # Before the partition there are no chunks yet: that is 0 %, not 100 %. A job with no
    # items at all is complete only once it reports.
    if total:
        percent = round(100.0 * len(chunks) / total, 1)
    else:
        percent = 100.0 if stage is BatchStage.DONE else 0.0
    return BatchStatus(
        stage=stage,
        total_chunks=total,
        processed_chunks=len(chunks),
        failed_items=sum(chunk.failed for chunk in chunks),
        percent_complete=percent,
    ).to_wire()


def _failure_error(
    request: BatchInput, total_items: int, failed: int, percent: float, ran: int, total: int
) -> str:
    text = (
        f"{percent}% of the processed items failed, over the limit of "
        f"{request.max_failure_percent}%"
    )
    if ran < total:
        share = round(100.0 * failed / total_items, 2)
        text += (
            f"; {failed} failed items are {share}% of all {total_items}, so scheduling "
            f"stopped after {ran} of {total} chunks"
        )
    return text


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
        (after the report was written; scheduling stops as soon as that is certain).
    """
    request = BatchInput.model_validate(context.get_input(expected_type=dict))
    job_id = context.instance_id
    started_at = context.current_utc_datetime
    # From the input when the start route chose it: an episode lost to a crash runs again
    # with another timestamp, so a new_uuid() there could differ from the one the lost
    # episode's chunk activities (and their ledger) used.
    run_id = request.run_id or context.new_uuid()
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
    per_group = max(MIN_CHUNKS_PER_GROUP, 10 * request.max_parallelism)
    cancel = context.wait_for_external_event(CANCEL_EVENT)
    flagged = False
    failure_stop = False
    chunks: list[BatchChunkStats] = []
    for group_index, first in enumerate(range(0, total, per_group)):
        if cancel.is_completed or failure_stop:
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
                max_failure_percent=request.max_failure_percent,
                failed_before=sum(chunk.failed for chunk in chunks),
            ).to_wire(),
            group_id,
        )
        # The hand-off lets the host schedule the cancel flag while the group runs.
        timer = handoff_timer(context)
        winner = yield context.task_any([group, cancel, timer])
        settle_handoff(timer, winner)
        if winner is timer:
            winner = yield context.task_any([group, cancel])
        if winner is cancel:
            reason = parse_event(BatchCancelEvent, cancel.result).reason
            context.set_custom_status({**_status(BatchStage.CANCELLING, total, chunks)})
            flag = FlagCancelInput(job_id=job_id, run_id=run_id, reason=reason)
            yield context.call_activity("request_batch_cancel", flag.to_wire())
            flagged = True
            yield group
        result = ChunkGroupResult.model_validate(group.result)
        chunks.extend(result.chunks)
        failure_stop = result.stopped is GroupStop.FAILURE_LIMIT
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
        error=_failure_error(request, partition.total_items, failed, percent, len(chunks), total)
        if over_limit
        else None,
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
