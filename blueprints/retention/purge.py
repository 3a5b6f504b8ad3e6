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
# Purges in flight at once. The run keeps up to this many going and lists again as they end,
# instead of purging page by page: under a load that keeps storage busy a page waited for its
# slowest purge (tens of seconds on Azurite), the job fell behind the instances finishing, and
# the hub it was meant to keep small grew (docs/benchmarks.md, the long run).
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
    """Purge finished instances last updated more than ``days`` before ``as_of``.

    At most ``max_pages`` pages' worth of instances (``max_pages * PAGE_SIZE``) are purged in
    one run, up to ``PURGE_WINDOW`` at once. A purge that fails stops the listing; the purges
    under way finish (each one's entity delete is sent before its instance goes), every
    failure is logged, and the run then raises.

    Returns
    -------
    PurgeReport
        What was removed, and whether more is left for the next run.
    """
    before = cutoff(as_of, days).astimezone(UTC)
    report = PurgeReport(cutoff=before)
    limit = max_pages * PAGE_SIZE
    purging: dict[str, asyncio.Task[None]] = {}
    seen: set[str] = set()  # purged, or being purged, by this run
    failures: list[Exception] = []

    async def purge(status: df.DurableOrchestrationStatus) -> None:
        try:
            entity = PER_INSTANCE_ENTITIES.get(status.name or "")
            if entity is not None:
                # Before the purge, not after: an instance purged and its entity left behind
                # (the run cut short in between) would never be listed again, and the
                # entity's state would stay for ever. An entity cleared and its instance left
                # is listed by the next run, which sends the delete again (it is idempotent).
                await client.signal_entity(
                    df.EntityId(entity, status.instance_id), DELETE_OPERATION
                )
                report.entities += 1
            result = await client.purge_instance_history(status.instance_id)
            if result.instances_deleted:
                report.add(status.name or "")
        except Exception as error:  # raised once the purges under way have ended
            logger.error(
                "Retention: purging instance %s failed: %s", status.instance_id, _describe(error)
            )
            failures.append(error)
        finally:
            purging.pop(status.instance_id, None)

    statuses = [df.OrchestrationRuntimeStatus(name) for name in FINISHED_STATUSES]
    more = False
    try:
        while not failures and len(seen) < limit:
            # Without a continuation token the host answers the first page: what was purged
            # is gone from the next listing, so each call lists what is still left (and what
            # is still being purged, which is skipped).
            try:
                page = await client.get_status_by(created_time_to=before, runtime_status=statuses)
            except Exception as error:
                logger.error("Retention: listing instances failed: %s", _describe(error))
                failures.append(error)
                break
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
            room = min(limit - len(seen), PURGE_WINDOW - len(purging))
            fresh = [status for status in expired if status.instance_id not in seen][:room]
            if fresh:
                report.pages += 1
                for status in fresh:
                    seen.add(status.instance_id)
                    purging[status.instance_id] = asyncio.create_task(purge(status))
            more = len(page) >= PAGE_SIZE and bool(expired)
            if not more or not (fresh or purging):
                break
            # List again once half the window is free; or, when this listing found fewer new
            # ones than that (the page is mostly what is being purged and what is kept), once
            # half of what is under way is done, at least one: each listing then finds as many
            # new ones as purges ended, and a slow purge holds up none of the others.
            free = PURGE_WINDOW // 2 if len(fresh) >= PURGE_WINDOW // 2 else len(purging) // 2
            while len(purging) > free and not failures:
                await asyncio.wait(list(purging.values()), return_when=asyncio.FIRST_COMPLETED)
        # A purge that fails stops the listing, not the purges under way: each ends, so what
        # this run removed is counted and logged.
        await asyncio.gather(*purging.values())
    except BaseException:  # cancelled: cancel the purges under way and wait for them
        tasks = list(purging.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    if failures:
        if len(failures) == 1:
            raise failures[0]
        raise ExceptionGroup(f"Retention: {len(failures)} purges failed", failures)
    report.more_left = more and len(seen) >= limit
    return report


def _describe(error: BaseException) -> str:
    """An error for the log: its type, and its text only for the durable client's own errors
    (a status code); an HTTP library's text can hold the request URL and its key."""
    if type(error) is Exception:
        return str(error)[:200]
    return type(error).__name__


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
