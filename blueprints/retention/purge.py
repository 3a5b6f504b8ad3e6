"""The retention job: a timer function that purges finished instances older than
``WORKFLOW_RETENTION_DAYS`` (the guide's "purge old instances to manage storage costs").

It lists finished instances created before the cutoff through the durable client, in slices of
created time small enough that each listing fits in the host's one page, purges those also last
updated before it (the host deletes each one's status row, history rows and large-payload
blobs), clears the per-instance entities of the instances it removed, and logs one line saying
what it removed. docs/retention.md says what is kept, and why slices.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
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
    split_point,
)

logger = logging.getLogger(__name__)

bp = df.Blueprint()

# Entities keyed by an orchestration's instance ID that outlive it: once the instance is purged,
# the entity's state is cleared (its ``delete`` operation).
PER_INSTANCE_ENTITIES = {DOCUMENT_ORCHESTRATOR: INDEX_ENTITY}
# Operation that makes such an entity delete its state.
DELETE_OPERATION = "delete"
# Purges in flight at once. The run keeps up to this many going and lists the next slice as soon
# as one ends, instead of purging page by page: under a load that keeps storage busy a page
# waited for its slowest purge (tens of seconds on Azurite), the job fell behind the instances
# finishing, and the hub it was meant to keep small grew (docs/benchmarks.md, the long run).
# No more than the durable client sends at once: its one HTTP session holds 30 connections
# (azure-functions-durable 1.x, ``http_utils._get_session``), and purges beyond those waited in
# it, ahead of the next listing (a listing then took up to a minute on a loaded Azurite).
PURGE_WINDOW = 25


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


@dataclass(eq=False)
class _Slice:
    """Instances created in ``[start, end]`` (``start`` None: from the first), bounds inclusive
    as the host's filter is, so slices that share a bound miss nothing at it."""

    start: datetime | None
    end: datetime
    # Listed full and not split (all it showed created within one second): listed again once
    # at most half of these, the expired instances it showed, are still queued or purging.
    waiting_for: frozenset[str] = frozenset()


async def purge_finished(
    client: df.DurableOrchestrationClient,
    as_of: datetime,
    days: float,
    *,
    max_pages: int = MAX_PAGES_PER_RUN,
) -> PurgeReport:
    """Purge finished instances last updated more than ``days`` before ``as_of``.

    The host answers a listing with its first page only, in instance-ID order, so the run lists
    finished instances created before the cutoff in created-time slices, oldest first: a slice
    whose listing comes back full is split (``split_point``) and each part listed in turn,
    until each listing holds all its slice's instances. Instances created before the cutoff but
    finished since (kept) or being purged by this run then fill no listing ahead of the
    expired ones behind them.

    At most ``max_pages`` pages' worth of instances (``max_pages * PAGE_SIZE``) are purged in
    one run, up to ``PURGE_WINDOW`` at once; the run lists the next slice whenever the window
    has room and nothing listed is waiting for it. A purge that fails stops the listing; the
    purges under way finish (each one's entity delete is sent before its instance goes), every
    failure is logged, and the run then raises.

    Returns
    -------
    PurgeReport
        What was removed, and whether more is left for the next run.
    """
    before = cutoff(as_of, days).astimezone(UTC)  # UTC: the client writes the time as UTC
    report = PurgeReport(cutoff=before)
    limit = max_pages * PAGE_SIZE
    slices = [_Slice(None, before)]  # still to list, oldest first
    queued: dict[str, df.DurableOrchestrationStatus] = {}  # listed expired, awaiting room
    purging: dict[str, asyncio.Task[None]] = {}
    seen: set[str] = set()  # purged, being purged or queued by this run
    kept: set[str] = set()  # created before the cutoff, finished since
    cut_short = False  # expired instances listed but left for the limit
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

    def ready(piece: _Slice) -> bool:
        pending = sum(1 for key in piece.waiting_for if key in purging or key in queued)
        return pending <= len(piece.waiting_for) // 2

    def take(piece: _Slice, page: list[df.DurableOrchestrationStatus]) -> list[_Slice]:
        """Queue the listing's expired instances new to this run; what replaces the slice."""
        nonlocal cut_short
        expired: list[df.DurableOrchestrationStatus] = []
        for status in page:
            runtime_status = status.runtime_status.value if status.runtime_status else ""
            if is_expired(runtime_status, status.last_updated_time, before):
                expired.append(status)
            else:
                kept.add(status.instance_id)
        fresh = [status for status in expired if status.instance_id not in seen]
        cut_short = cut_short or len(fresh) > limit - len(seen)
        fresh = fresh[: limit - len(seen)]
        if fresh:
            report.pages += 1
        for status in fresh:
            seen.add(status.instance_id)
            queued[status.instance_id] = status
        if len(page) < PAGE_SIZE:
            # The whole slice, as far as the client can tell (a short page on Azure Table
            # storage may hide more: a later run lists those, docs/retention.md, Limits).
            return []
        created = [_utc(status.created_time) for status in page if status.created_time]
        point = split_point(piece.start, piece.end, created)
        if point is not None:
            return [_Slice(piece.start, point), _Slice(point, piece.end)]
        # Taken as it is, as one page was before slices: what is purged leaves the listing,
        # so listing it again (once enough of that is gone) shows what came after. Only
        # purges still to end can change the listing: with none, the slice is done.
        waiting = frozenset(
            status.instance_id
            for status in expired
            if status.instance_id in queued or status.instance_id in purging
        )
        return [_Slice(piece.start, piece.end, waiting)] if waiting else []

    statuses = [df.OrchestrationRuntimeStatus(name) for name in FINISHED_STATUSES]
    try:
        while not failures:
            while queued and len(purging) < PURGE_WINDOW:
                status = queued.pop(next(iter(queued)))
                purging[status.instance_id] = asyncio.create_task(purge(status))
            piece = next((piece for piece in slices if ready(piece)), None)
            if (
                piece is not None
                and not queued
                and len(purging) < PURGE_WINDOW
                and len(seen) < limit
            ):
                try:
                    page = await client.get_status_by(
                        created_time_from=piece.start,
                        created_time_to=piece.end,
                        runtime_status=statuses,
                    )
                except Exception as error:
                    logger.error("Retention: listing instances failed: %s", _describe(error))
                    failures.append(error)
                    break
                at = next(index for index, other in enumerate(slices) if other is piece)
                slices[at : at + 1] = take(piece, page)
                continue
            if not purging:
                break  # nothing left to list, or the run's bound reached
            # Room, or a slice waiting for purges, comes with a purge that ends.
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
    report.kept_recent = len(kept)
    report.more_left = len(seen) >= limit and (bool(slices) or cut_short)
    return report


def _utc(moment: datetime) -> datetime:
    """A listed time in UTC, a time without an offset taken as UTC (as the host means it)."""
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
