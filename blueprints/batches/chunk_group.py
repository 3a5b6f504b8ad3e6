"""The ``batch_chunk_group`` sub-orchestrator: a sliding window over a group of chunks.

``maxParallelism`` chunk activities are in flight while chunks remain: each completion frees a
slot that the next chunk takes at once. New chunks are handed to the host with a timer due
now (:mod:`blueprints.handoff`); without it the host would wait for the newest chunk
before scheduling the next one, and the window would not slide. Groups run one after another,
so the bound holds for the whole job; a sub-orchestration per group keeps each history to a
few hundred events however large the job.

The window stops scheduling, and only waits for the chunks already in flight, when

* a chunk reports ``skipped``: the job was cancelled;
* the job's failed items are more than ``maxFailurePercent`` of all its items: from then on
  the job fails whatever the remaining chunks hold, so running them would be wasted work.
"""

import logging
from collections import deque
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskBase, TaskState

from blueprints.batches.processing import over_failure_limit
from blueprints.handoff import handoff_timer, settle_handoff
from models.batches import (
    BatchChunkStats,
    BatchStage,
    BatchStatus,
    ChunkGroupInput,
    ChunkGroupResult,
    GroupStop,
    ProcessChunkInput,
    ProcessChunkResult,
)

logger = logging.getLogger(__name__)

bp = df.Blueprint()

# A storage hiccup is retried; a chunk still failing after that counts all its items as failed
# instead of failing the job (SDK retries are fixed-interval, which is fine for a hiccup).
CHUNK_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2_000, max_number_of_attempts=3)


_STAGES = {
    None: BatchStage.PROCESSING,
    GroupStop.CANCELLED: BatchStage.CANCELLING,
    GroupStop.FAILURE_LIMIT: BatchStage.FAILING,
}


def _chunk_size(request: ChunkGroupInput, chunk_index: int) -> int:
    return min(request.batch_size, request.total_items - chunk_index * request.batch_size)


def _stats(request: ChunkGroupInput, chunk_index: int, task: TaskBase) -> BatchChunkStats | None:
    if task.state is TaskState.FAILED:
        size = _chunk_size(request, chunk_index)
        return BatchChunkStats(
            chunk_index=chunk_index, processed=size, failed=size, error=str(task.result)[:500]
        )
    result = ProcessChunkResult.model_validate(task.result)
    if result.skipped:
        return None
    return BatchChunkStats(
        chunk_index=chunk_index, processed=result.processed, failed=result.failed
    )


def _chunk_task(
    context: df.DurableOrchestrationContext, request: ChunkGroupInput, chunk_index: int
) -> TaskBase:
    chunk_input = ProcessChunkInput(
        job_id=request.job_id,
        run_id=request.run_id,
        chunk_index=chunk_index,
        first_item=chunk_index * request.batch_size,
    )
    return context.call_activity_with_retry(
        "process_batch_chunk", CHUNK_RETRY, chunk_input.to_wire()
    )


@bp.orchestration_trigger(context_name="context")
def batch_chunk_group(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    """Process chunks ``[firstChunk, lastChunk)`` keeping ``maxParallelism`` in flight.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        Its input is a :class:`~models.batches.ChunkGroupInput` as JSON.

    Returns
    -------
    dict[str, Any]
        A :class:`~models.batches.ChunkGroupResult` as JSON.
    """
    request = ChunkGroupInput.model_validate(context.get_input(expected_type=dict))
    waiting = deque(range(request.first_chunk, request.last_chunk))
    in_flight: dict[int, TaskBase] = {}
    done: list[BatchChunkStats] = []
    failed_items = request.failed_before
    stop: GroupStop | None = None
    while in_flight or (waiting and stop is None):
        created = False
        while waiting and stop is None and len(in_flight) < request.max_parallelism:
            chunk_index = waiting.popleft()
            in_flight[chunk_index] = _chunk_task(context, request, chunk_index)
            created = True
        # Only while more chunks will follow: the last ones need no hand-off.
        timer = handoff_timer(context) if created and waiting else None
        watched = [*in_flight.values(), *([timer] if timer is not None else [])]
        finished = yield context.task_any(watched)
        settle_handoff(timer, finished)
        if finished is timer:
            continue
        chunk_index = next(index for index, task in in_flight.items() if task is finished)
        del in_flight[chunk_index]
        stats = _stats(request, chunk_index, finished)
        if stats is None:
            stop = GroupStop.CANCELLED
            continue
        done.append(stats)
        failed_items += stats.failed
        if stop is None and over_failure_limit(
            failed_items, request.total_items, request.max_failure_percent
        ):
            stop = GroupStop.FAILURE_LIMIT
        context.set_custom_status(
            BatchStatus(
                stage=_STAGES[stop],
                total_chunks=request.last_chunk - request.first_chunk,
                processed_chunks=len(done),
                failed_items=sum(chunk.failed for chunk in done),
            ).to_wire()
        )
    if not context.is_replaying:
        logger.info(
            "batch group %s processed %d chunks (stopped: %s)",
            context.instance_id,
            len(done),
            stop.value if stop else None,
        )
    return ChunkGroupResult(
        chunks=done, cancelled=stop is GroupStop.CANCELLED, stopped=stop
    ).to_wire()
