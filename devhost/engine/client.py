"""Client operations: what a client asks of an instance, made durable before it is answered.

Every operation that a client is told was accepted writes first: a start with a generated ID
as the instance's Pending row (as DTFx records a start), a start with the caller's ID, an
event, a terminate, a suspend, a resume or a rewind as a message in the durable inbox. Only
then does the engine act on it in memory, and only then does the call return (the 202).

The operations on one instance ID run one at a time (``KeyedLocks``): of concurrent starts of
one ID exactly one wins and the others find it existing, and an instance's messages get IDs in
the order they are applied, which the inbox watermark relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from devhost.app.loader import FunctionIndex
from devhost.engine.api import (
    InstanceAlreadyExists,
    InstanceGone,
    InstanceNotFound,
    InvalidOperation,
    InvalidRequest,
    StatusOptions,
    refuse_entity_id,
    storable_id,
)
from devhost.engine.cache import InstanceCache
from devhost.engine.checkpointer import Checkpointed, Checkpointer
from devhost.engine.clock import Clock
from devhost.engine.entities import EntityHost, entity_instance_id
from devhost.engine.history import EventType, as_utc, execution_started, new_event
from devhost.engine.instance import Instance, status_object
from devhost.engine.invoke import known_functions_message
from devhost.engine.messages import MessageIds
from devhost.engine.scheduling import Scheduler
from devhost.store.base import (
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    InstanceQuery,
    InstanceRow,
    Store,
    StoredMessage,
)
from devhost.store.write_window import for_a_client

log = logging.getLogger("devhost.engine")

# Instances a purge by filter deletes at once. One after the other, a page of 100 took minutes
# on a busy Azurite (each purge is two to four round trips); DTFx's purge by filter also deletes
# in parallel.
PURGE_CONCURRENCY = 50


class KeyedLocks:
    """One ``asyncio.Lock`` per key, kept only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class ClientOperations:
    """The durable client's operations on orchestration instances (``Backend``'s first half).

    Parameters
    ----------
    begin
        Makes ``instance`` (new, or cached) start ``execution`` in memory: its ExecutionStarted
        delivered with ``message``, the start's durable record (None for a Pending row).
    """

    def __init__(
        self,
        index: FunctionIndex,
        store: Store,
        clock: Clock,
        ids: MessageIds,
        cache: InstanceCache,
        checkpointer: Checkpointer,
        scheduler: Scheduler,
        entities: EntityHost,
        *,
        overridable_states: str,
    ) -> None:
        self._index = index
        self._store = store
        self._clock = clock
        self._ids = ids
        self._cache = cache
        self._checkpointer = checkpointer
        self._scheduler = scheduler
        self._entities = entities
        self._any_state = overridable_states.lower() == "anystate"
        self._locks = KeyedLocks()
        self._completion_waiters: dict[str, list[asyncio.Future[None]]] = {}

    # -- starts -----------------------------------------------------------------------------------

    async def start_new(self, name: str, instance_id: str | None, input_json: str | None) -> str:
        info = self._index.orchestrator(name)
        if info is None:
            raise InvalidRequest(
                known_functions_message("orchestrator", name, self._index.orchestrators)
            )
        if not instance_id:
            # A generated ID is new: no need to ask the store whether it exists. It is recorded
            # as its Pending row (one request, no queue message to delete later); recovery
            # runs a Pending row with no history.
            instance_id = uuid.uuid4().hex
            now = self._clock.now()
            instance = _new_instance(instance_id, info.durable_name, None, input_json, now)
            row = instance.row()
            self._checkpointer.adopt_new(instance, row)
            with for_a_client():  # its 202 waits for it: before the group commit's writes
                await self._store.write_row(row)
            self._cache.add(instance)
            self.begin(instance, None)
            return instance_id
        _validate_instance_id(instance_id)
        async with self._locks.hold(instance_id):
            existing = await self._cache.load(instance_id)
            if existing is not None:
                if existing.is_terminal:
                    # Its end is stored before another execution may replace it.
                    await self._checkpointer.write(existing, for_client=True)
                if self._blocks_start(existing):
                    raise InstanceAlreadyExists(
                        f"An Orchestration instance with the status {existing.status} "
                        "already exists."
                    )
                self._ids.observe(existing.durable.watermark)
            # A caller's ID may have history left behind (a purge cut short by a crash), which
            # would read as newer than a row with no history: its start is queued, and the
            # earlier execution's history and inbox watermark stay the record until the new
            # one's first checkpoint replaces them.
            now = self._clock.now()
            message = StoredMessage(
                msg_id=self._ids.new(),
                instance_id=instance_id,
                body={
                    "kind": "start",
                    "name": info.durable_name,
                    "executionId": uuid.uuid4().hex,
                    "input": input_json,
                    "created": now.isoformat(),
                },
            )
            await self._store.put_message(message)
            self.start_from_message(message, existing)
        return instance_id

    def start_from_message(self, message: StoredMessage, existing: Instance | None) -> Instance:
        """Begin the execution a durable start message asks for (a new or a cached instance)."""
        body = message.body
        created = datetime.fromisoformat(body["created"])
        if existing is not None:
            existing = self._cache.keep(existing)
        if existing is None:
            existing = _new_instance(
                message.instance_id, body["name"], body["executionId"], body["input"], created
            )
            self._cache.add(existing)
        else:
            dropped = existing.begin_execution(
                body["name"], body["executionId"], body["input"], created
            )
            self._checkpointer.record(
                existing, consumed=[p.message for p in dropped if p.message is not None]
            )
        self.begin(existing, message)
        return existing

    def begin(self, instance: Instance, message: StoredMessage | None) -> None:
        """Deliver the ExecutionStarted of the instance's current execution."""
        log.info(
            "%s (%s) started",
            instance.name,
            instance.instance_id,
            extra={"instance_id": instance.instance_id, "workflow": instance.name,
                   "event": "started"},
        )  # fmt: skip
        started = execution_started(
            instance.created,
            instance.instance_id,
            instance.execution_id,
            instance.name,
            instance.input,
            instance.parent,
        )
        self._scheduler.deliver(instance, started, message)

    def _blocks_start(self, instance: Instance) -> bool:
        return not self._any_state and instance.status in RUNNING_STATUSES

    async def restart(self, instance_id: str, new_instance_id: bool) -> str:
        instance = await self._cache.load(instance_id)
        if instance is None:
            raise InvalidRequest(
                f"An orchestration with the instanceId {instance_id} was not found."
            )
        target = None if new_instance_id else instance_id
        if target is not None and instance.status in RUNNING_STATUSES:
            raise InstanceAlreadyExists(
                f"An Orchestration instance with the status {instance.status} already exists."
            )
        return await self.start_new(instance.name, target, instance.input)

    # -- events and commands ----------------------------------------------------------------------

    async def raise_event(self, instance_id: str, event_name: str, input_json: str | None) -> None:
        await self._command(
            instance_id,
            "event",
            lambda instance, now: new_event(
                EventType.EventRaised, now, Name=event_name, Input=input_json
            ),
        )

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        await self._command(
            instance_id,
            "terminate",
            lambda instance, now: new_event(EventType.ExecutionTerminated, now, Input=reason),
        )

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        def event(instance: Instance, now: datetime) -> dict[str, Any]:
            if instance.status == "Suspended":
                raise InvalidOperation(f"Instance '{instance_id}' is already suspended.")
            return new_event(EventType.ExecutionSuspended, now, Reason=reason)

        await self._command(instance_id, "suspend", event)

    async def resume(self, instance_id: str, reason: str | None) -> None:
        def event(instance: Instance, now: datetime) -> dict[str, Any]:
            if instance.status != "Suspended":
                raise InvalidOperation(f"Instance '{instance_id}' is not suspended.")
            return new_event(EventType.ExecutionResumed, now, Reason=reason)

        await self._command(instance_id, "resume", event)

    async def _command(
        self,
        instance_id: str,
        kind: str,
        make_event: Callable[[Instance, datetime], dict[str, Any]],
    ) -> None:
        """Make a client's event durable, then hand it to the running instance."""
        refuse_entity_id(instance_id)
        async with self._locks.hold(instance_id):
            instance = await self._cache.load(instance_id)
            if instance is None:
                raise InstanceNotFound(instance_id)
            if instance.is_terminal:
                raise InstanceGone(instance_id)
            event = make_event(instance, self._clock.now())
            self._ids.observe(instance.durable.watermark)
            message = StoredMessage(
                msg_id=self._ids.new(),
                instance_id=instance_id,
                body={"kind": kind, "executionId": instance.execution_id, "event": event},
            )
            await self._store.put_message(message)
            self._scheduler.deliver(instance, event, message)

    async def rewind(self, instance_id: str, reason: str | None) -> None:
        refuse_entity_id(instance_id)
        async with self._locks.hold(instance_id):
            instance = await self._cache.load(instance_id)
            if instance is None:
                raise InstanceNotFound(instance_id)
            if instance.status in ("Completed", "Terminated", "Canceled"):
                raise InstanceGone(instance_id)
            if instance.status != "Failed":
                raise InvalidOperation(
                    f"Instance '{instance_id}' is {instance.status}; "
                    "only failed instances can be rewound."
                )
            # The instance and every failed sub-orchestration below it are rewound together.
            # Each gets its own durable message before anything changes in memory, so a crash
            # before the next checkpoint replays the rewind from the inbox (recovery).
            targets = [instance, *await self._failed_children(instance)]
            now = self._clock.now()
            deliveries = []
            for target in targets:
                event = new_event(EventType.GenericEvent, now, Data=reason or "")
                self._ids.observe(target.durable.watermark)
                message = StoredMessage(
                    msg_id=self._ids.new(),
                    instance_id=target.instance_id,
                    body={"kind": "rewind", "executionId": target.execution_id, "event": event},
                )
                await self._store.put_message(message)
                deliveries.append((target, event, message))
            for target, event, message in deliveries:
                target = self._cache.keep(target)
                self.rewind_in_memory(target, now)
                self._scheduler.deliver(target, event, message)

    def rewind_in_memory(self, instance: Instance, now: datetime) -> None:
        first_changed = instance.rewind(now)
        self._checkpointer.record(instance, rewritten_from=first_changed)

    async def _failed_children(self, instance: Instance) -> list[Instance]:
        """Failed sub-orchestrations of the instance's last execution, recursively."""
        created = {
            e["EventId"]: e.get("InstanceId")
            for e in instance.history
            if e["EventType"] == EventType.SubOrchestrationInstanceCreated
        }
        children: list[Instance] = []
        for event in instance.history:
            if event["EventType"] != EventType.SubOrchestrationInstanceFailed:
                continue
            child_id = created.get(event.get("TaskScheduledId"))
            child = await self._cache.load(child_id) if child_id else None
            if child is not None and child.status == "Failed":
                children += [child, *await self._failed_children(child)]
        return children

    # -- status -----------------------------------------------------------------------------------

    async def get_status(self, instance_id: str, options: StatusOptions) -> dict[str, Any] | None:
        instance = await self._cache.load(instance_id)
        if instance is None:
            return None
        await self._durable_if_finished(instance)
        history = instance.history if options.show_history else None
        return status_object(
            instance.row(),
            show_input=options.show_input,
            history=history,
            show_history_output=options.show_history_output,
        )

    async def _durable_if_finished(self, instance: Instance) -> None:
        """Write a finished instance now if its end is not in the store yet.

        The real host answers status from the Instances table, so a client never sees an
        output that a crash could still take back (a re-run activity may answer differently).
        This host answers from memory; a finished instance is therefore written before its
        status is shown, instead of waiting for the next group commit.
        """
        if instance.is_terminal:
            await self._checkpointer.write(instance, for_client=True)

    async def list_instances(
        self, query: InstanceQuery, top: int, continuation: str | None, show_input: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        # The store answers queries: what it may find is written first.
        await self._checkpointer.checkpoint(_may_find(query))
        rows, token = await self._store.query_instances(query, top, continuation)
        return [status_object(self._fresh_row(row), show_input=show_input) for row in rows], token

    def _fresh_row(self, row: InstanceRow) -> InstanceRow:
        """The row as memory has it (newer), unless that shows an end not stored yet."""
        instance = self._cache.get(row.instance_id)
        if instance is None or (instance.is_terminal and not self._checkpointer.is_clean(instance)):
            return row
        return instance.row()

    async def wait_for_completion(self, instance_id: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            instance = await self._cache.load(instance_id)
            if instance is None:
                return None
            remaining = deadline - time.monotonic()
            if instance.is_terminal or remaining <= 0:
                await self._durable_if_finished(instance)
                return status_object(instance.row())
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._completion_waiters.setdefault(instance_id, []).append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, remaining)

    def finished(self, instance_id: str) -> None:
        """An execution of ``instance_id`` ended: wake whoever waits for it."""
        for waiter in self._completion_waiters.pop(instance_id, []):
            if not waiter.done():
                waiter.set_result(None)

    # -- purge ------------------------------------------------------------------------------------

    async def purge(self, instance_id: str) -> int:
        # The instance's row is there (read, or written just now) and held under its lock:
        # once delete_instance returns, it is gone, whatever the store says it found (a delete
        # resent after its answer was lost finds nothing; so does a store call retried whole).
        async with self._locks.hold(instance_id):
            instance = self._cache.get(instance_id)
            if instance is None:
                # Not in memory: its row says whether it finished (as for purge_many). Loading
                # it would read its history, which on Azurite is a scan of the whole History
                # table, only to delete it: the retention job's purges then fell behind.
                row = await self._store.read_instance(instance_id)
                if row is None:
                    raise InstanceNotFound(instance_id)
                if row.runtime_status not in TERMINAL_STATUSES:
                    return 0
                known = self._cache.evicted_rows(instance_id)
                self._cache.discard(instance_id)
                await self._store.delete_instance(instance_id, known)
                return 1
            if not instance.is_terminal:
                return 0
            await self._checkpointer.write(instance, for_client=True)
            await self._checkpointer.delete_consumed(instance)
            self._cache.discard(instance_id)
            await self._store.delete_instance(instance_id, self._checkpointer.stored_rows(instance))
            return 1

    async def purge_many(
        self, created_from: datetime, created_to: datetime | None, statuses: list[str]
    ) -> int:
        query = InstanceQuery(
            runtime_status=statuses or sorted(TERMINAL_STATUSES),
            created_from=created_from,
            created_to=created_to or self._clock.now(),
        )
        await self._checkpointer.checkpoint(_may_find(query))
        slots = asyncio.Semaphore(PURGE_CONCURRENCY)

        async def purge(row: InstanceRow) -> int:
            async with slots, self._locks.hold(row.instance_id):
                cached = self._cache.get(row.instance_id)
                if cached is not None:
                    if not cached.is_terminal:
                        return 0  # started again since the query
                    # As purge: a write of it under way (a late event it dropped) must not
                    # land after the delete and put it back, nor its start message stay.
                    await self._checkpointer.write(cached, for_client=True)
                    await self._checkpointer.delete_consumed(cached)
                known = (
                    self._checkpointer.stored_rows(cached)
                    if cached is not None
                    else self._cache.evicted_rows(row.instance_id)
                )
                self._cache.discard(row.instance_id)
                # The store's answer, not 1: a purge of this one instance may have removed it
                # since the listing. (A delete resent by the SDK after a lost answer still
                # counts: AzureStore._delete_instance_row.)
                return 1 if await self._store.delete_instance(row.instance_id, known) else 0

        deleted = 0
        token: str | None = None
        while True:
            rows, token = await self._store.query_instances(query, 100, token)
            # A failure cancels the page's other purges: each is safe to cut short (the next
            # purge finishes it), and the caller gets the failure itself (a storage outage is
            # a 503), not the group the TaskGroup wraps it in.
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [
                        group.create_task(purge(row))
                        for row in rows
                        if row.runtime_status in TERMINAL_STATUSES
                    ]
            except ExceptionGroup as failed:
                raise failed.exceptions[0] from failed
            deleted += sum(task.result() for task in tasks)
            if not token:
                return deleted

    # -- entities ---------------------------------------------------------------------------------

    async def signal_entity(
        self, name: str, key: str, operation: str, input_json: str | None
    ) -> None:
        _validate_entity_key(name, key)
        await self._entities.signal_from_client(name, key, operation, input_json)

    async def read_entity(self, name: str, key: str) -> tuple[bool, str | None]:
        _validate_entity_key(name, key)
        return await self._entities.read(name, key)

    async def list_entities(
        self, name: str | None, top: int, continuation: str | None, fetch_state: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        await self._checkpointer.checkpoint()
        return await self._entities.list(name, top, continuation, fetch_state)


def _may_find(query: InstanceQuery) -> Callable[[Checkpointed], bool]:
    """Whether a listing by ``query`` may find a target, by what its row and the row the store
    holds say (or would say once written). Its ID and created times decide; the status and name
    filters do not, as they change with every write: anything they might match is written.
    Entities are always written (their rows are listed apart, by ``list_entities``)."""

    def may_find(target: Checkpointed) -> bool:
        prefix = query.instance_id_prefix
        if prefix and not target.instance_id.startswith(prefix):
            return False
        if not isinstance(target, Instance):
            return True
        stored = target.durable.stored_created
        return stored is None or _in_range(stored, query) or _in_range(target.created, query)

    return may_find


def _in_range(created: datetime, query: InstanceQuery) -> bool:
    return (query.created_from is None or as_utc(created) >= as_utc(query.created_from)) and (
        query.created_to is None or as_utc(created) <= as_utc(query.created_to)
    )


def _new_instance(
    instance_id: str, name: str, execution_id: str | None, input_json: str | None, now: datetime
) -> Instance:
    return Instance(
        instance_id=instance_id,
        name=name,
        execution_id=execution_id or uuid.uuid4().hex,
        status="Pending",
        created=now,
        updated=now,
        input=input_json,
    )


def _validate_entity_key(name: str, key: str) -> None:
    """An entity's ID is its rows' partition key: the instance ID rules hold for it, so that a
    signal is refused before it is accepted rather than failing every checkpoint after."""
    if not storable_id(entity_instance_id(name, key)):
        raise InvalidRequest(
            "The entity key is not valid: it must not contain '/', '\\', '#', '?' or control "
            "characters, and the entity ID '@name@key' must not exceed 256 characters."
        )


def _validate_instance_id(instance_id: str) -> None:
    """DurableClient.StartNewAsync's rules (protocol notes §7.1)."""
    if not instance_id or instance_id.startswith("@") or not storable_id(instance_id):
        raise InvalidRequest(
            f"Instance ID '{instance_id}' is not valid: it must not be empty, start with '@', "
            "contain '/', '\\', '#', '?' or control characters, or exceed 256 characters."
        )
