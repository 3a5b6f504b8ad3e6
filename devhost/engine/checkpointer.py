"""The checkpointer: the one writer of what the engine persists about its instances.

It alone writes each instance's ``DurableState`` (dirty, persisted_count, the execution the
store holds, the inbox watermark, consumed messages, the outbox) and decides the order of
durable writes. One instance's checkpoint, in order:

1. a snapshot, taken at one instant: history, row, watermark, consumed messages, outbox;
2. the entity signals of the outbox are put in the entities' durable inboxes, before the
   history that records them as sent;
3. ``write_checkpoint``: the new history rows, the sentinel (``HistoryCount`` and
   ``InboxWatermark``) last, then the instance row; then the entity calls of the outbox
   (applied only for an episode that is stored; recovery sends a stored, unanswered one again).
   A new execution's first write carries the state it began with (``Checkpoint.opening``),
   which a store that cannot replace the stored execution's rows atomically writes first;
4. the sent messages are handed to the entities in memory, and what waited for this state to
   be stored is told (a parent learns of its child's end, a caller gets an entity's answer,
   only once that end or that answer cannot be taken back by a crash, as in DTFx, where
   these travel as messages sent with the checkpoint);
5. the consumed inbox messages are deleted in the background: one left behind by a crash is
   recognised by the watermark and dropped at the next start.

A message is consumed (and the watermark passes it) only in the episode that applied it, so a
checkpoint never stores a watermark past a message whose effect it does not hold. Changes are
written by a group commit every ``interval`` seconds; ``checkpoint()`` waits for a flush that
starts after the call (or, given what a listing may find, writes only those now); ``write()``
writes one instance now (a finished one, before its status is shown). Two writes of one
instance never overlap: an older sentinel landing after a newer one would hide events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime
from typing import Any, Protocol

from devhost.engine.history import EventType
from devhost.engine.instance import DurableState, Instance, row_from_history
from devhost.store.base import Checkpoint, InstanceRow, Store, StoredHistory, StoredMessage
from devhost.store.retrying import StorageUnavailable
from devhost.store.write_window import for_a_client

log = logging.getLogger("devhost.engine")

_FLUSH_BATCH = 64  # instances written concurrently by one group commit
# After a failed group commit: the first pause, doubled while storage stays away.
_FIRST_PAUSE = 0.5
_LONGEST_PAUSE = 8.0
# How often a client waiting for a write looks whether storage is known to be down.
_DOWN_CHECK_SECONDS = 0.2
# An instance whose activity runs is left for a later group commit only while it holds fewer
# unwritten results than this (each one an activity a crash would run again).
_UNWRITTEN_RESULTS = 4
_RESULTS = frozenset(
    {
        EventType.TaskCompleted,
        EventType.TaskFailed,
        EventType.SubOrchestrationInstanceCompleted,
        EventType.SubOrchestrationInstanceFailed,
    }
)


class Checkpointed(Protocol):
    """What the checkpointer writes: an orchestration instance or an entity."""

    instance_id: str
    execution_id: str
    history: list[dict[str, Any]]
    durable: DurableState

    def row(self) -> InstanceRow: ...


class Checkpointer:
    """Writes changed instances to ``store`` in the order above.

    Parameters
    ----------
    store
        Where checkpoints go.
    interval
        Seconds between group commits; 0 writes every change at once.
    max_delay
        The longest a group commit skips an instance whose next episode is about to run.
    hand_off
        Gives a sent entity request to the entity host (after its checkpoint).
    spawn
        Runs a background task the engine waits for when it rests (the message deletes).
    after_flush
        Called after each group commit (the instance cache evicts then).
    settled
        Called after what waited for a write was told (the engine may be at rest).
    working
        Whether an activity or HTTP call of an instance (by ID) is under way: its next
        episode is coming, like one already due.
    """

    def __init__(
        self,
        store: Store,
        *,
        interval: float,
        max_delay: float,
        hand_off: Callable[[StoredMessage], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        after_flush: Callable[[], None],
        settled: Callable[[], None],
        working: Callable[[str], bool] = lambda _instance_id: False,
    ) -> None:
        self._store = store
        self._interval = interval
        self._max_delay = max_delay
        self._hand_off = hand_off
        self._spawn = spawn
        self._after_flush = after_flush
        self._settled = settled
        self._working = working
        # Told once a write lands, or sent with it: the engine does not rest until then.
        self._waiting_callbacks = 0
        self._unsent = 0
        self._dirty: dict[str, Checkpointed] = {}
        self._writing: dict[str, tuple[Checkpointed, asyncio.Future[None]]] = {}
        self._requested = asyncio.Event()
        self._waiters: list[asyncio.Future[None]] = []  # for the next flush to start
        self._serving: list[asyncio.Future[None]] = []  # for the flush under way
        self._running = False
        self._inline = asyncio.Lock()
        # Deletes of consumed messages that failed (when), sent again after a later group commit.
        self._undeleted: list[tuple[float, Checkpointed, list[StoredMessage]]] = []

    # -- the record of changes ------------------------------------------------------------------

    def adopt(
        self,
        target: Checkpointed,
        stored: StoredHistory | None,
        *,
        repaired: bool,
        row_created: datetime | None = None,
    ) -> None:
        """A target loaded from the store: what it holds (``row_created``: the created time
        of its row as read), and whether memory is newer."""
        state = target.durable
        state.stored_created = row_created
        if stored is not None:
            state.persisted_count = len(stored.events)
            state.stored_execution = stored.execution_id
            state.watermark = stored.inbox_watermark
        state.stored_rows = stored.rows if stored is not None else None
        if repaired:
            self._mark(target)

    def adopt_new(self, target: Checkpointed, row: InstanceRow) -> None:
        """A target the store holds nothing of (an instance ID this host generated), but
        ``row``, about to be written (the target runs only once it is)."""
        state = target.durable
        state.stored_rows = 0
        state.stored_created = row.created_time
        state.stored_row = (row.execution_id, row.runtime_status)

    def stored_rows(self, target: Checkpointed) -> int | None:
        """The history rows the store holds of ``target`` besides its sentinel, if known
        (``Store.delete_instance``'s ``history_rows``); None before its first checkpoint."""
        state = target.durable
        return state.stored_rows if state.stored_execution else None

    def record(
        self,
        target: Checkpointed,
        *,
        consumed: Iterable[StoredMessage] = (),
        rewritten_from: int | None = None,
        changed: bool = True,
        then: Callable[[], None] | None = None,
    ) -> None:
        """``target`` changed: ``consumed`` messages were applied, and the history may have
        been rewritten from index ``rewritten_from`` on (the rows from there are written
        again). ``then`` runs once this change is stored."""
        state = target.durable
        applied = False
        for message in consumed:
            state.consumed.append(message)
            state.watermark = max(state.watermark, message.msg_id)
            applied = True
        execution = target.execution_id
        if execution != state.stored_execution and (
            state.opening is None or state.opening[0] != execution
        ):
            # An execution began (a continue-as-new: its opening events, with the messages
            # the old one consumed): a whole state its first write can store first.
            state.opening = (execution, len(target.history), state.watermark)
        if rewritten_from is not None:
            state.persisted_count = min(state.persisted_count, rewritten_from)
            floor = state.rewritten_from
            state.rewritten_from = rewritten_from if floor is None else min(floor, rewritten_from)
        if changed or applied:
            self._mark(target)
        if then is not None:
            self.after_stored(target, then)

    def after_stored(
        self, target: Checkpointed, callback: Callable[[], None], *, history: bool = False
    ) -> None:
        """Run ``callback`` once everything recorded of ``target`` so far is stored: now if
        it is, else after its next write (asked for at once). ``history``: once its history
        is, the row may follow later (work starting once the episode that scheduled it is
        stored: a running instance's row changes nothing a crash could lose)."""
        if self.is_clean(target):
            callback()
            return
        state = target.durable
        (state.to_start if history else state.after_stored).append(callback)
        self._waiting_callbacks += 1
        self._mark(target)
        self._requested.set()

    def send(self, target: Checkpointed, message: StoredMessage) -> None:
        """Send ``message`` (an entity request) with ``target``'s next checkpoint."""
        target.durable.outbox.append(message)
        self._unsent += 1
        self._mark(target)
        self._requested.set()  # an entity call waits for this flush: start it now

    def _mark(self, target: Checkpointed) -> None:
        state = target.durable
        if not state.dirty:
            state.dirty = True
            state.dirty_since = time.monotonic()
        self._dirty[target.instance_id] = target
        if self._interval <= 0:
            self._requested.set()

    def is_clean(self, target: Checkpointed) -> bool:
        """Nothing of ``target`` is unwritten or being written."""
        return not target.durable.dirty and target.instance_id not in self._writing

    def busy(self) -> bool:
        """A write is awaited to send a request or to tell someone (a parent, an entity's
        caller) something: what follows from it is not under way yet, but it will be."""
        return self._waiting_callbacks > 0 or self._unsent > 0

    def forget(self, target: Checkpointed) -> None:
        """``target`` was purged: nothing of it is to be written again."""
        self._dirty.pop(target.instance_id, None)
        state = target.durable
        self._waiting_callbacks -= len(state.after_stored) + len(state.to_start)
        self._unsent -= len(state.outbox)
        state.dirty = False
        state.consumed, state.outbox, state.after_stored, state.to_start = [], [], [], []

    # -- writing --------------------------------------------------------------------------------

    async def write(
        self, target: Checkpointed, *, for_client: bool = False, row_may_wait: bool = False
    ) -> None:
        """Write ``target`` now; return once nothing of it is unwritten.

        ``for_client``: a client waits (a status read of a finished instance, a purge, an
        entity read). While storage is down it gets ``StorageUnavailable`` (503) after one
        attempt of its own, instead of waiting for a background write that rides the outage
        out (another write of ``target`` under way is awaited only while storage answers).
        ``row_may_wait`` (the periodic group commit): a write that only work waiting to start
        needs may store the history alone (``_history_only``), and return with the row left
        for a later write.
        """
        while True:
            current = self._writing.get(target.instance_id)
            if current is not None:
                if for_client:
                    await self._unless_down(current[1], "write_checkpoint")
                else:
                    await asyncio.shield(current[1])
                continue
            if not target.durable.dirty:
                return
            if await self._write_once(target, for_client=for_client, row_may_wait=row_may_wait):
                return

    def _history_only(self, target: Checkpointed, row: InstanceRow) -> bool:
        """Whether this write may leave the instance row for later: a running orchestration
        whose row, as stored, already names this execution and this status (or Pending: a
        start's row, which a reader finding history takes as running, as recovery does),
        written because the work an episode scheduled waits for its history to be stored.

        At 100 in flight a HelloSequence5 writes its history before each of its five
        activities starts; the row each time as well would be 13 storage requests instead of
        8 (docs/benchmarks.md). The row left behind is written by a later group commit (the
        instance stays dirty; ``max_delay`` bounds how long while it keeps working), by any
        write a client waits for, and with its end. Only finished instances leave the cache,
        so while the stored row lags, the instance is read from memory. A row lagging for
        ``max_delay`` is written with the next write, as a chain of activities would
        otherwise leave it until its end."""
        state = target.durable
        return (
            bool(state.to_start)
            and not state.after_stored
            and isinstance(target, Instance)
            and not target.is_terminal
            and state.stored_row is not None
            and state.stored_row[0] == row.execution_id
            and (
                state.stored_row[1] == row.runtime_status
                or (state.stored_row[1] == "Pending" and row.runtime_status == "Running")
            )
            # The history as stored is this execution's, or none at all (a start's first
            # write): no stored execution's rows are replaced.
            and (
                (state.stored_execution == row.execution_id and state.opening is None)
                or (not state.stored_execution and state.stored_rows == 0)
            )
            and state.rewritten_from is None
            and state.dirty_since > time.monotonic() - self._max_delay
        )

    async def _write_once(
        self, target: Checkpointed, *, for_client: bool = False, row_may_wait: bool = False
    ) -> bool:
        """One write of ``target``; True if it stored the history only (the row is due)."""
        state = target.durable
        history = list(target.history)
        row = target.row()
        persisted = state.persisted_count if row.execution_id == state.stored_execution else 0
        history_only = row_may_wait and not for_client and self._history_only(target, row)
        checkpoint = Checkpoint(
            row, history, persisted, state.watermark, state.stored_rows, with_row=not history_only
        )
        if persisted == 0 and state.opening is not None and state.opening[0] == row.execution_id:
            _, opened, watermark = state.opening
            if 0 < opened < len(history):
                opening = history[:opened]
                checkpoint.opening = Checkpoint(
                    row_from_history(row, opening), opening, 0, watermark, state.stored_rows
                )
        consumed, state.consumed = state.consumed, []
        outbox, state.outbox = state.outbox, []
        callbacks, state.after_stored = state.after_stored, []
        starts, state.to_start = state.to_start, []
        since = state.dirty_since
        if not history_only:
            # Either row may be the stored one until this write succeeds (if it fails, the
            # row may or may not have landed); where both say the same, it is known.
            if state.stored_created != row.created_time:
                state.stored_created = None
            if state.stored_row != (row.execution_id, row.runtime_status):
                state.stored_row = None
        state.dirty = False
        state.rewritten_from = None
        if state.stored_rows is not None:  # whether or not the write succeeds, rows may be
            state.stored_rows = max(state.stored_rows, len(history))
        self._dirty.pop(target.instance_id, None)
        done = asyncio.get_running_loop().create_future()
        self._writing[target.instance_id] = (target, done)
        # Signals go before the history, calls after it. A signal recorded as EventSent is
        # then never lost (an orchestration that signals and finishes in one episode has
        # nothing left to send it again). A call is applied only once the episode that made
        # it is stored: an episode a crash takes back runs again and may not make it (a
        # cancel arrived meanwhile), and an entity that applied it would keep its effect (a
        # reservation) for ever. A call stored but not sent is an unanswered call in the
        # history, which recovery sends again.
        signals = [m for m in outbox if _is_signal(m)]
        calls = [m for m in outbox if not _is_signal(m)]
        sent: list[StoredMessage] = []
        # Only the writes themselves are the client's: tasks started after them (the delete
        # of consumed messages, deliveries to entities) are background work, and a task
        # copies the context it is started in.
        writes_for = for_a_client() if for_client else contextlib.nullcontext()
        try:
            with writes_for:
                if signals:
                    await asyncio.gather(*(self._store.put_message(m) for m in signals))
                    sent += signals
                await self._store.write_checkpoint(checkpoint)
                if calls:
                    await asyncio.gather(*(self._store.put_message(m) for m in calls))
                    sent += calls
        except BaseException:
            handed = {id(m) for m in sent}
            state.outbox[:0] = [m for m in outbox if id(m) not in handed]
            state.consumed[:0] = consumed
            state.after_stored[:0] = callbacks
            state.to_start[:0] = starts
            self._mark(target)  # written again by the next flush
            raise
        finally:
            del self._writing[target.instance_id]
            done.set_result(None)
            self._unsent -= len(sent)
            durable = {id(m) for m in sent}
            for message in outbox:  # in the order sent (the durable inbox orders by ID)
                if id(message) in durable:
                    self._hand_off(message)
        state.stored_execution = row.execution_id
        if history_only:
            # The row is still to be written: the target stays dirty since the change the
            # row lags (so ``max_delay`` counts from then).
            state.dirty_since = min(state.dirty_since, since) if state.dirty else since
            state.dirty = True
            self._dirty[target.instance_id] = target
        else:
            state.stored_created = row.created_time
            state.stored_row = (row.execution_id, row.runtime_status)
        if state.opening is not None and state.opening[0] == row.execution_id:
            state.opening = None
        floor = state.rewritten_from  # the history was rewritten while it was being written
        state.persisted_count = len(history) if floor is None else min(len(history), floor)
        self._waiting_callbacks -= len(callbacks) + len(starts)
        for callback in (*callbacks, *starts):
            callback()
        if callbacks or starts:
            self._settled()
        if consumed:
            state.deleting += consumed
            self._spawn(self._delete(target, consumed))
        return history_only

    async def delete_consumed(self, target: Checkpointed) -> None:
        """Delete the messages ``target`` consumed whose background delete has not landed.

        A purge does it before it deletes the instance: with its history gone (and the
        watermark in its sentinel), nothing would tell a start message left in the queue that
        it was applied, and the next start would run the purged instance again."""
        messages = list(target.durable.deleting)
        if messages:
            with for_a_client():  # the purge's caller waits: a 503 while storage is down
                await self._store.delete_messages(messages)
            _drop(target.durable.deleting, messages)

    async def _delete(self, target: Checkpointed, messages: list[StoredMessage]) -> None:
        try:
            await self._store.delete_messages(messages)
            _drop(target.durable.deleting, messages)
        except StorageUnavailable as error:
            # Reported once per outage by the store. Sent again after a later group commit:
            # left behind until a restart, an orchestration's watermark would drop them, but an
            # entity recognises a request only while it remembers its ID (the last 1,000).
            log.debug("%d consumed messages not deleted: %s", len(messages), error)
            self._undeleted.append((time.monotonic(), target, messages))
        except Exception as error:
            log.warning(
                "%d consumed messages not deleted yet: %s",
                len(messages),
                error,
                extra={"event": "message_delete_failed", "detail": type(error).__name__},
            )
            self._undeleted.append((time.monotonic(), target, messages))

    def _delete_again(self) -> None:
        """Send the failed deletes again (after a group commit that succeeded)."""
        if not self._undeleted or self._store.is_down():
            return
        failed_before = time.monotonic() - _FIRST_PAUSE
        again = [(t, m) for failed, t, m in self._undeleted if failed < failed_before]
        self._undeleted = [item for item in self._undeleted if item[0] >= failed_before]
        for target, messages in again:
            self._spawn(self._delete(target, messages))

    async def _flush(self, *, complete: bool) -> None:
        """Write changed targets (group commit).

        ``complete``: everything changed before the call, including targets being written
        now (their write may have started before the change). Otherwise (the periodic commit)
        targets being written wait for the next round, and so do orchestrations whose next
        episode is about to run, for up to ``max_delay``: what they would write is stale at
        once, and nothing is at risk unwritten, as their messages stay in the queue until a
        checkpoint holds them.
        """
        if complete:
            targets = self._changed()
        else:
            oldest = time.monotonic() - self._max_delay
            targets = [
                t
                for t in self._dirty.values()
                if t.instance_id not in self._writing and not self._mid_step(t, oldest)
            ]
        failure = await self._write_all(targets, row_may_wait=not complete)
        self._after_flush()
        if failure is not None:
            raise failure

    def _changed(self) -> list[Checkpointed]:
        """Every target with something unwritten, or being written (its write may have
        started before its latest change)."""
        writing = (t for t, _ in self._writing.values() if t.instance_id not in self._dirty)
        return [*self._dirty.values(), *writing]

    async def _write_all(
        self, targets: list[Checkpointed], *, for_client: bool = False, row_may_wait: bool = False
    ) -> BaseException | None:
        """Write ``targets``, ``_FLUSH_BATCH`` at a time; the first failure, once all ended
        (the failed targets stayed dirty)."""
        failures: list[BaseException] = []
        for start in range(0, len(targets), _FLUSH_BATCH):
            outcomes = await asyncio.gather(
                *(
                    self.write(t, for_client=for_client, row_may_wait=row_may_wait)
                    for t in targets[start : start + _FLUSH_BATCH]
                ),
                return_exceptions=True,
            )
            failures.extend(o for o in outcomes if isinstance(o, BaseException))
        return failures[0] if failures else None

    def _mid_step(self, target: Checkpointed, dirty_before: float) -> bool:
        """An orchestration whose next episode is about to run (not started yet, new events
        queued, or an activity's result coming, while fewer than ``_UNWRITTEN_RESULTS``
        results are unwritten), with nothing waiting to be sent or started, that became dirty after
        ``dirty_before`` (entities are never mid-step).

        At 100 orchestrations in flight an instance spends most of its life between an
        episode and its activity's result; writing it then cost 1.23 checkpoints per
        HelloSequence5 instead of 1.00-1.07 (docs/benchmarks.md), all of it stale at once. The
        bound on unwritten results keeps what a crash makes run again small for an instance
        whose activities never stop (a fan-out, a batch)."""
        state = target.durable
        if not isinstance(target, Instance) or state.outbox or state.after_stored or state.to_start:
            return False
        if target.is_terminal:
            return False
        about_to_run = (
            target.in_ready_queue
            or target.status == "Pending"
            or (
                self._working(target.instance_id)
                and _unwritten_results(target) < _UNWRITTEN_RESULTS
            )
        )
        return about_to_run and target.durable.dirty_since > dirty_before

    async def checkpoint(self, needed: Callable[[Checkpointed], bool] | None = None) -> None:
        """Return once everything changed before the call (everything ``needed`` keeps, if
        given) is in the store.

        ``needed``: only the changed targets it keeps, each written at once for a client
        (``write``), without waiting for a complete group commit. A listing names the
        instances it may find: at 100 in flight, the retention job's listings waited 1.5 to
        7.6 s each for a group commit of everything (docs/benchmarks.md).
        """
        if needed is not None:
            failure = await self._write_all(
                [t for t in self._changed() if needed(t)], for_client=True
            )
            if failure is not None:
                raise failure
            return
        if not self._running:
            async with self._inline:
                await self._flush(complete=True)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._requested.set()
        try:
            await self._unless_down(waiter, "checkpoint")
        except StorageUnavailable:
            waiter.cancel()  # the flush will not tell anyone
            raise

    async def _unless_down(self, future: asyncio.Future[None], operation: str) -> None:
        """Await ``future`` for a client, giving up with ``StorageUnavailable`` (503) once
        storage is known to be down: the write it waits for then rides the outage out."""
        while True:
            if self._store.is_down():
                raise StorageUnavailable(operation)
            done, _ = await asyncio.wait({future}, timeout=_DOWN_CHECK_SECONDS)
            if done:
                return future.result()

    async def run(self) -> None:
        """The group commit: a flush every ``interval`` seconds, or when one is asked for."""
        self._running = True
        pause = _FIRST_PAUSE
        try:
            while True:
                # asyncio.timeout, not wait_for: on Python 3.11, wait_for swallows a
                # cancellation that arrives as the awaited event is set.
                # With no interval (every change written at once), a row left for later (a
                # history-only write) is written once ``max_delay`` has passed.
                wait = self._interval if self._interval > 0 else None
                if wait is None and self._dirty:
                    wait = self._max_delay
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._requested.wait()
                self._requested.clear()
                self._serving, self._waiters = self._waiters, []
                try:
                    await self._flush(complete=bool(self._serving))
                except StorageUnavailable as error:
                    # The store reports an outage once, when it starts and when it ends; the
                    # loop backs off quietly until then (what failed stays dirty).
                    _release(self._serving, error)
                    log.debug("Checkpoint failed, retrying in %.1f s: %s", pause, error)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, _LONGEST_PAUSE)
                except Exception as error:
                    _release(self._serving, error)
                    log.exception(
                        "Checkpoint failed; will retry",
                        extra={"event": "checkpoint_failed", "detail": type(error).__name__},
                    )
                    await asyncio.sleep(_FIRST_PAUSE)
                else:
                    _release(self._serving, None)
                    pause = _FIRST_PAUSE
                    self._delete_again()
                self._serving = []
        finally:
            self._running = False

    async def close(self) -> None:
        """The last checkpoint (``run`` is stopped): write everything, release all waiters."""
        waiters = [*self._serving, *self._waiters]
        self._serving, self._waiters = [], []
        try:
            await self._flush(complete=True)
        except Exception as error:
            _release(waiters, error)
            raise
        _release(waiters, None)


def _unwritten_results(instance: Instance) -> int:
    """Activity and sub-orchestration results in the history that the store does not hold."""
    stored = instance.durable.persisted_count
    if instance.durable.stored_execution != instance.execution_id:
        stored = 0
    return sum(1 for event in instance.history[stored:] if event["EventType"] in _RESULTS)


def _drop(messages: list[StoredMessage], gone: list[StoredMessage]) -> None:
    """Remove ``gone`` (the same objects) from ``messages``."""
    ids = {id(message) for message in gone}
    messages[:] = [message for message in messages if id(message) not in ids]


def _release(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


def _is_signal(message: StoredMessage) -> bool:
    return bool(message.body.get("request", {}).get("signal"))
