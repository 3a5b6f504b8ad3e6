"""The retention job: a timer function that purges finished instances older than
``WORKFLOW_RETENTION_DAYS`` (the guide's "purge old instances to manage storage costs").

It lists the instances created before the cutoff through the durable client, in slices of
created time small enough that each listing fits in the host's one page, purges the finished
ones also last updated before it (the host deletes each one's status row, history rows and
large-payload blobs) -- a slice holding nothing else in one request, the others one by one --,
clears the per-instance entities of the instances it removes, and logs one line saying what it
removed. docs/retention.md says what is kept, why slices, and why a slice's purge is safe.
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
# A slice purged in one request counts as one purge here.
PURGE_WINDOW = 25
# A slice's purge request needs a lower bound (the host answers 400 without one): the first
# slice, listed from the first instance, is purged from here, and only when every instance it
# listed was created at or after it.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Entity deletes a slice's purge sends at once, before its one purge request.
ENTITY_DELETES_AT_ONCE = 5


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
    # Listed whole and all expired, some of it being purged by a neighbouring slice's purge
    # (they share a bound): ``wait_all``, listed again once none of these is.
    waiting_for: frozenset[str] = frozenset()
    wait_all: bool = False


async def purge_finished(
    client: df.DurableOrchestrationClient,
    as_of: datetime,
    days: float,
    *,
    max_pages: int = MAX_PAGES_PER_RUN,
) -> PurgeReport:
    """Purge finished instances last updated more than ``days`` before ``as_of``.

    The host answers a listing with its first page only, in instance-ID order, so the run lists
    the instances created before the cutoff (all statuses) in created-time slices, oldest
    first: a slice whose listing comes back full is split (``split_point``) and each part
    listed in turn, until each listing holds all its slice's instances. Instances created
    before the cutoff but still running or finished since (kept) or being purged by this run
    then fill no listing ahead of the expired ones behind them.

    A slice whose whole listing is expired instances is purged in one request, by its created
    times and the finished statuses (``purge_instance_history_by``), after the per-instance
    entity deletes of the instances it listed: it removes what the listing showed and nothing
    else (``purge_slice`` says why). A slice that also holds an instance to keep has its
    expired instances purged one by one.

    At most ``max_pages`` pages' worth of instances (``max_pages * PAGE_SIZE``) are purged in
    one run, up to ``PURGE_WINDOW`` requests at once (a slice's purge is one); the run lists
    the next slice whenever the window has room and nothing listed is waiting for it. A purge
    that fails stops the listing; the purges under way finish (each instance's entity delete is
    sent before its instance goes), every failure is logged, and the run then raises.

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
    purging: dict[str, asyncio.Task[None]] = {}  # one by one, by instance ID
    bulks: dict[_Slice, asyncio.Task[None]] = {}  # whole slices, each one request
    in_bulk: set[str] = set()  # the instances the slices being purged listed
    seen: set[str] = set()  # purged, being purged or queued by this run
    kept: set[str] = set()  # created before the cutoff, finished since
    cut_short = False  # expired instances listed but left for the limit
    failures: list[Exception] = []
    finished = [df.OrchestrationRuntimeStatus(name) for name in FINISHED_STATUSES]

    def fail(what: str, error: Exception) -> None:
        """Log a failure (raised once the purges under way have ended)."""
        logger.error("Retention: %s failed: %s", what, _describe(error))
        failures.append(error)

    async def clear_entity(status: df.DurableOrchestrationStatus) -> None:
        entity = PER_INSTANCE_ENTITIES.get(status.name or "")
        if entity is not None:
            await client.signal_entity(df.EntityId(entity, status.instance_id), DELETE_OPERATION)
            report.entities += 1

    async def purge(status: df.DurableOrchestrationStatus) -> None:
        try:
            # Before the purge, not after: an instance purged and its entity left behind
            # (the run cut short in between) would never be listed again, and the entity's
            # state would stay for ever. An entity cleared and its instance left is listed by
            # the next run, which sends the delete again (it is idempotent).
            await clear_entity(status)
            result = await client.purge_instance_history(status.instance_id)
            if result.instances_deleted:
                report.add(status.name or "")
        except Exception as error:
            fail(f"purging instance {status.instance_id}", error)
        finally:
            purging.pop(status.instance_id, None)

    async def purge_slice(piece: _Slice, expired: list[df.DurableOrchestrationStatus]) -> None:
        """Purge the slice ``piece``, whose listing showed the instances ``expired`` (all
        of them finished and last updated before the cutoff) and entities only.

        One request deletes every instance created in the slice (bounds inclusive, as the
        listing's) that is finished when the host runs it: the instances the listing showed,
        nothing more.
        - Not the entities: their rows are Running (``_is_entity``).
        - No instance created since the listing: the slice ends at the cutoff, in the past,
          and a start of a finished instance's ID again gives it a new created time (now),
          outside the slice.
        - What can change in between is an instance listed as finished being rewound: still
          running when the request runs, it stays (the host filters the status then);
          finished again already, it goes though it was updated after the cutoff. A purge of
          that one instance by ID does the same (the host checks only that it is finished):
          the per-instance path has that window too, from its listing to its request.
        """
        try:
            gate = asyncio.Semaphore(ENTITY_DELETES_AT_ONCE)

            async def clear(status: df.DurableOrchestrationStatus) -> None:
                async with gate:
                    await clear_entity(status)

            # Every entity first (see purge): none of the slice goes if one delete failed.
            cleared = await asyncio.gather(*map(clear, expired), return_exceptions=True)
            errors = [
                (status, outcome)
                for status, outcome in zip(expired, cleared, strict=True)
                if isinstance(outcome, Exception)
            ]
            for status, error in errors:
                fail(f"clearing the entity of instance {status.instance_id}", error)
            if errors:
                return
            result = await client.purge_instance_history_by(
                created_time_from=piece.start or EARLIEST,
                created_time_to=piece.end,
                runtime_status=finished,
            )
            deleted = result.instances_deleted or 0
            if deleted == len(expired):
                for status in expired:
                    report.add(status.name or "")
            else:
                # Some of them were purged by someone else, or rewound, meanwhile: which ones
                # the answer does not say, so they are counted without a name.
                report.add_unnamed(deleted)
                logger.warning(
                    "Retention: the purge of %d instance(s) created from %s to %s deleted %d",
                    len(expired),
                    (piece.start or EARLIEST).isoformat(),
                    piece.end.isoformat(),
                    deleted,
                )
        except Exception as error:
            fail(
                f"purging the instances created from {(piece.start or EARLIEST).isoformat()} "
                f"to {piece.end.isoformat()}",
                error,
            )
        finally:
            in_bulk.difference_update(status.instance_id for status in expired)
            bulks.pop(piece, None)

    def pending(instance_id: str) -> bool:
        return instance_id in queued or instance_id in purging or instance_id in in_bulk

    def ready(piece: _Slice) -> bool:
        waiting = sum(1 for key in piece.waiting_for if pending(key))
        return waiting <= (0 if piece.wait_all else len(piece.waiting_for) // 2)

    def whole(piece: _Slice, page: list[df.DurableOrchestrationStatus]) -> bool:
        """Whether a purge of the slice's created times and the finished statuses reaches the
        instances the listing showed, all of them."""
        return piece.start is not None or all(
            status.created_time is not None and _utc(status.created_time) >= EARLIEST
            for status in page
        )

    def take(piece: _Slice, page: list[df.DurableOrchestrationStatus]) -> list[_Slice]:
        """Split the slice, purge it whole, or queue the listing's expired instances new to
        this run; what replaces the slice."""
        nonlocal cut_short
        expired: list[df.DurableOrchestrationStatus] = []
        others = 0  # instances a purge of the whole slice must not reach
        for status in page:
            runtime_status = status.runtime_status.value if status.runtime_status else ""
            if is_expired(runtime_status, status.last_updated_time, before):
                expired.append(status)
            elif runtime_status in FINISHED_STATUSES:
                kept.add(status.instance_id)
                others += 1
            elif not _is_entity(status):
                others += 1
        if len(page) >= PAGE_SIZE:
            created = [_utc(status.created_time) for status in page if status.created_time]
            point = split_point(piece.start, piece.end, created)
            if point is not None:
                # Nothing of it is queued: its parts are listed next, each purged whole or
                # one by one.
                return [_Slice(piece.start, point), _Slice(point, piece.end)]
        elif expired and not others and whole(piece, expired):
            keys = {status.instance_id for status in expired}
            waiting = frozenset(key for key in keys if key in in_bulk)
            one_by_one = any(key in queued or key in purging for key in keys)
            if waiting and not one_by_one:
                # A neighbouring slice's purge, sharing this one's bound, reaches some of them:
                # listed again once it has ended, so that each instance goes in one request
                # and each answer's count is its listing's. (Not for a purge of one instance,
                # which may be waiting for the run's others: those go one by one.)
                return [_Slice(piece.start, piece.end, waiting, wait_all=True)]
            if not keys & seen and len(keys) <= limit - len(seen):
                seen.update(keys)
                in_bulk.update(keys)
                report.pages += 1
                bulks[piece] = asyncio.create_task(purge_slice(piece, expired))
                return []
        fresh = [status for status in expired if status.instance_id not in seen]
        cut_short = cut_short or len(fresh) > limit - len(seen)
        fresh = fresh[: limit - len(seen)]
        if fresh:
            report.pages += 1
        for status in fresh:
            seen.add(status.instance_id)
            queued[status.instance_id] = status
        if len(page) < PAGE_SIZE:
            return []  # the whole slice was listed
        # Full, and not split (all it showed created in its first second or its last): taken
        # as it is, as one page was before slices: what is purged leaves the listing,
        # so listing it again (once enough of that is gone) shows what came after. Only
        # purges still to end can change the listing: with none, the slice is done.
        waiting = frozenset(
            status.instance_id
            for status in expired
            if status.instance_id in queued or status.instance_id in purging
        )
        return [_Slice(piece.start, piece.end, waiting)] if waiting else []

    def under_way() -> list[asyncio.Task[None]]:
        return [*purging.values(), *bulks.values()]

    try:
        while not failures:
            while queued and len(purging) + len(bulks) < PURGE_WINDOW:
                status = queued.pop(next(iter(queued)))
                purging[status.instance_id] = asyncio.create_task(purge(status))
            piece = next((piece for piece in slices if ready(piece)), None)
            if (
                piece is not None
                and not queued
                and len(purging) + len(bulks) < PURGE_WINDOW
                and len(seen) < limit
            ):
                try:
                    # All statuses: a slice purged whole must be seen to hold nothing to keep.
                    page = await client.get_status_by(
                        created_time_from=piece.start, created_time_to=piece.end
                    )
                except Exception as error:
                    fail("listing instances", error)
                    break
                at = next(index for index, other in enumerate(slices) if other is piece)
                slices[at : at + 1] = take(piece, page)
                continue
            if not under_way():
                break  # nothing left to list, or the run's bound reached
            # Room, or a slice waiting for purges, comes with a purge that ends.
            await asyncio.wait(under_way(), return_when=asyncio.FIRST_COMPLETED)
        # A purge that fails stops the listing, not the purges under way: each ends, so what
        # this run removed is counted and logged.
        await asyncio.gather(*under_way())
    except BaseException:  # cancelled: cancel the purges under way and wait for them
        tasks = under_way()
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


def _is_entity(status: df.DurableOrchestrationStatus) -> bool:
    """Whether a listed instance is an entity's (listed when no status is asked for).

    Its row's status is Running for as long as it is there (on Azure Storage as on the local
    host): no purge of this job reaches it, by ID (it never expires) or by slice (which
    purges finished instances only).
    """
    running = df.OrchestrationRuntimeStatus.Running
    return status.instance_id.startswith("@") and status.runtime_status == running


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
