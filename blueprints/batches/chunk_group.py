"""The ``batch_chunk_group`` sub-orchestrator: a sliding window over a group of chunks.

At most ``maxParallelism`` chunk activities are in flight; each completion frees a slot for the
next chunk, so the window stays full until the group runs out. Groups run one after another, so
the bound holds for the whole job. A sub-orchestration per group keeps each history to a few
hundred events however large the job.

A chunk that reports ``skipped`` means the job was cancelled: the window stops scheduling and
only waits for the chunks already in flight.
"""

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskBase, TaskState

from models.batches import (
    BatchChunkStats,
    BatchStage,
    BatchStatus,
    ChunkGroupInput,
    ChunkGroupResult,
    ProcessChunkInput,
    ProcessChunkResult,
)
from models.common import failure_reason

logger = logging.getLogger(__name__)

bp = df.Blueprint()

# A storage hiccup is retried; a chunk still failing after that counts all its items as failed
# instead of failing the job (SDK retries are fixed-interval, which is fine for a hiccup).
CHUNK_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2_000, max_number_of_attempts=3)


def _chunk_size(request: ChunkGroupInput, chunk_index: int) -> int:
    return min(request.batch_size, request.total_items - chunk_index * request.batch_size)


def _stats(request: ChunkGroupInput, chunk_index: int, task: TaskBase) -> BatchChunkStats | None:
    if task.state is TaskState.FAILED:
        size = _chunk_size(request, chunk_index)
        return BatchChunkStats(
            chunk_index=chunk_index, processed=size, failed=size, error=failure_reason(task.result)
        )
    result = ProcessChunkResult.model_validate(task.result)
    if result.skipped:
        return None
    return BatchChunkStats(
        chunk_index=chunk_index, processed=result.processed, failed=result.failed
    )


@bp.orchestration_trigger(context_name="context")
def batch_chunk_group(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    """Process chunks ``[firstChunk, lastChunk)`` with at most ``maxParallelism`` in flight.

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
    waiting = list(range(request.first_chunk, request.last_chunk))
    in_flight: dict[int, TaskBase] = {}
    done: list[BatchChunkStats] = []
    cancelled = False
    while waiting or in_flight:
        while waiting and not cancelled and len(in_flight) < request.max_parallelism:
            chunk_index = waiting.pop(0)
            chunk_input = ProcessChunkInput(
                job_id=request.job_id,
                run_id=request.run_id,
                chunk_index=chunk_index,
                first_item=chunk_index * request.batch_size,
            )
            in_flight[chunk_index] = context.call_activity_with_retry(
                "process_batch_chunk", CHUNK_RETRY, chunk_input.to_wire()
            )
        if not in_flight:
            break
        finished = yield context.task_any(list(in_flight.values()))
        chunk_index = next(index for index, task in in_flight.items() if task is finished)
        del in_flight[chunk_index]
        stats = _stats(request, chunk_index, finished)
        if stats is None:
            cancelled = True
            continue
        done.append(stats)
        context.set_custom_status(
            BatchStatus(
                stage=BatchStage.CANCELLING if cancelled else BatchStage.PROCESSING,
                total_chunks=request.last_chunk - request.first_chunk,
                processed_chunks=len(done),
                failed_items=sum(chunk.failed for chunk in done),
            ).to_wire()
        )
    if not context.is_replaying:
        logger.info(
            "batch group %s processed %d chunks (cancelled: %s)",
            context.instance_id,
            len(done),
            cancelled,
        )
    return ChunkGroupResult(chunks=done, cancelled=cancelled).to_wire()
