"""The retention job: a timer function that purges finished instances older than
``WORKFLOW_RETENTION_DAYS`` (the guide's "purge old instances to manage storage costs").

It lists finished instances created before the cutoff one page at a time through the durable
client, purges those also last updated before it (the host deletes each one's status row,
history rows and large-payload blobs), clears the per-instance entities of the instances it
removed, and logs one line saying what it removed. docs/retention.md says what is kept.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from blueprints.documents.activities import INDEX_ENTITY
from blueprints.documents.orchestrator import ORCHESTRATOR as DOCUMENT_ORCHESTRATOR
from blueprints.retention.policy import (
    FINISHED_STATUSES,
    MAX_PAGES_PER_RUN,
    PAGE_SIZE,
    RETENTION_SCHEDULE_SETTING,
    PurgeReport,
    cutoff,
    is_expired,
    retention_days,
)

logger = logging.getLogger(__name__)

bp = df.Blueprint()

# Entities keyed by an orchestration's instance ID that outlive it: once the instance is purged,
# the entity's state is cleared (its ``delete`` operation).
PER_INSTANCE_ENTITIES = {DOCUMENT_ORCHESTRATOR: INDEX_ENTITY}
# Operation that makes such an entity delete its state.
DELETE_OPERATION = "delete"
# Purges in flight at once. The run keeps this many going and lists again whenever half of
# them are done, instead of purging page by page: under a load that keeps storage busy a page
# waited for its slowest purge (tens of seconds on Azurite), the job fell behind the instances
# finishing, and the hub it was meant to keep small grew (docs/benchmarks.md, the long run).
PURGE_WINDOW = PAGE_SIZE


def run_time(timer: func.TimerRequest) -> datetime:
    """The moment this run stands for: the occurrence it was scheduled for, as the host
    reports it (the schedule status's ``Next``), else the wall clock.

    A run that starts late (or a missed occurrence run after a restart) then purges what had
    aged by its occurrence, never more; and a test host's virtual clock drives the job.
    """
    # schedule_status is on the worker's TimerRequest, not on the abstract type.
    scheduled = (getattr(timer, "schedule_status", None) or {}).get("Next")
    if isinstance(scheduled, str):
        moment = datetime.fromisoformat(scheduled)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)


async def purge_finished(
    client: df.DurableOrchestrationClient,
    as_of: datetime,
    days: float,
    *,
    max_pages: int = MAX_PAGES_PER_RUN,
) -> PurgeReport:
    """Purge finished instances last updated more than ``days`` before ``as_of``, page by page.

    Returns
    -------
    PurgeReport
        What was removed, and whether more is left for the next run.
    """
    before = cutoff(as_of, days).astimezone(UTC)
    report = PurgeReport(cutoff=before)
    purging: dict[str, asyncio.Task[None]] = {}
    seen: set[str] = set()  # purged, or being purged, by this run
    failures: list[BaseException] = []

    async def purge(status: df.DurableOrchestrationStatus) -> None:
        try:
            result = await client.purge_instance_history(status.instance_id)
            if not result.instances_deleted:
                return  # purged meanwhile by someone else
            report.add(status.name or "")
            entity = PER_INSTANCE_ENTITIES.get(status.name or "")
            if entity is not None:
                await client.signal_entity(
                    df.EntityId(entity, status.instance_id), DELETE_OPERATION
                )
                report.entities += 1
        except Exception as error:  # reported once the run's purges have ended
            failures.append(error)
        finally:
            purging.pop(status.instance_id, None)

    statuses = [df.OrchestrationRuntimeStatus(name) for name in FINISHED_STATUSES]
    try:
        while not failures:
            # Without a continuation token the host answers the first page: what was purged
            # is gone from the next listing, so each call lists what is still left (and what
            # is still being purged, which is skipped).
            page = await client.get_status_by(created_time_to=before, runtime_status=statuses)
            expired = [
                status
                for status in page
                if is_expired(
                    status.runtime_status.value if status.runtime_status else "",
                    status.last_updated_time,
                    before,
                )
            ]
            report.kept_recent = len(page) - len(expired)
            fresh = [status for status in expired if status.instance_id not in seen]
            if fresh:
                report.pages += 1
                for status in fresh:
                    seen.add(status.instance_id)
                    purging[status.instance_id] = asyncio.create_task(purge(status))
            more = len(page) >= PAGE_SIZE and bool(expired)
            if not more or report.pages >= max_pages or not (fresh or purging):
                await asyncio.gather(*purging.values())
                report.more_left = more and report.pages >= max_pages
                break
            # List again once half the window is free, or (when this listing found nothing
            # new: the page is what is being purged and what is kept) once one purge is done.
            room = PURGE_WINDOW // 2 if fresh else len(purging) - 1
            while len(purging) > room:
                await asyncio.wait(list(purging.values()), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in purging.values():
            task.cancel()
    if failures:
        raise failures[0]
    return report


# run_on_startup stays off: the job's moment comes from the occurrence it runs for.
@bp.timer_trigger(
    schedule=f"%{RETENTION_SCHEDULE_SETTING}%", arg_name="timer", run_on_startup=False
)
@bp.durable_client_input(client_name="client")
async def purge_old_instances(
    timer: func.TimerRequest, client: df.DurableOrchestrationClient
) -> None:
    """Purge finished instances older than WORKFLOW_RETENTION_DAYS and log what went."""
    report = await purge_finished(client, run_time(timer), retention_days())
    logger.info(report.summary())
