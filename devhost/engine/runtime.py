"""The orchestration engine: the part of the Functions host and the Durable extension that
drives a Python app's orchestrations, activities and timers.

How it keeps the "nothing acknowledged is lost" promise cheaply
---------------------------------------------------------------
* Whatever a client is told was accepted (start, event, terminate, suspend, resume) is first
  written to the store's durable inbox (``put_message``); only then does the call return.
* Everything else the engine produces (activity results, fired timers, a child's result) can
  be produced again: activities run at least once, timers are in the history, a child's
  outcome is in its own record. So the engine keeps running instances in memory and writes
  checkpoints in the background, batching every dirty instance into one concurrent flush
  (group commit) every ``checkpoint_interval`` seconds. A short orchestration is written
  once, when it is done.
* After a crash, ``recover()`` reloads every unfinished instance, re-runs its orchestrator
  once without new events to learn what was in flight (activities, timers, children, entity
  calls) and dispatches that again; then it redelivers the inbox messages that the last
  checkpoint had not consumed (recognised by their ``msg_id`` against the instance's
  watermark).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from devhost.app.loader import FunctionIndex
from devhost.engine import entities as entity_runtime
from devhost.engine.api import (
    Backend,
    InstanceAlreadyExists,
    InstanceGone,
    InstanceNotFound,
    InvalidOperation,
    InvalidRequest,
    StatusOptions,
)
from devhost.engine.checkpointer import Checkpointer
from devhost.engine.clock import Clock
from devhost.engine.history import (
    EventType,
    OrchestrationStatus,
    dotnet_time,
    execution_started,
    new_event,
    parse_time,
)
from devhost.engine.instance import Instance, Pending, status_object
from devhost.engine.invoke import (
    activity_failure,
    invoke_activity,
    invoke_orchestrator,
    known_functions_message,
)
from devhost.engine.replay import HostReplay, Outcome, Work
from devhost.engine.scheduling import Scheduler
from devhost.store.base import (
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    InstanceQuery,
    InstanceRow,
    Store,
    StoredMessage,
)

log = logging.getLogger("devhost.engine")

_INVALID_ID = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
ActivityOverride = Callable[[Any], Any]


@dataclass
class EngineSettings:
    """host.json knobs the engine honours."""

    max_concurrent_activities: int = 20
    max_concurrent_orchestrators: int = 20
    checkpoint_interval: float = 0.05
    max_cached_instances: int = 2000
    overridable_states: str = "NonRunningStates"
    stop_grace: float = 5.0  # seconds stop() lets running activities finish
    # The longest the periodic checkpoint skips an instance whose next episode is due.
    checkpoint_max_delay: float = 1.0


class Engine(Backend):
    """Runs one task hub of one app on one store."""

    def __init__(
        self,
        index: FunctionIndex,
        store: Store,
        *,
        task_hub: str,
        clock: Clock | None = None,
        settings: EngineSettings | None = None,
        activity_overrides: dict[str, ActivityOverride] | None = None,
    ) -> None:
        self.index = index
        self.store = store
        self.task_hub = task_hub
        self.clock = clock or Clock()
        self.settings = settings or EngineSettings()
        self.overrides = {k.lower(): v for k, v in (activity_overrides or {}).items()}
        self.instances: OrderedDict[str, Instance] = OrderedDict()
        self.entities = entity_runtime.EntityHost(self)
        self._scheduler = Scheduler(self.clock, busy=self._busy)
        self._checkpointer = Checkpointer(
            store,
            interval=self.settings.checkpoint_interval,
            max_delay=self.settings.checkpoint_max_delay,
            hand_off=lambda message: self.entities.send(message),
            spawn=self._spawn,
            after_flush=self._evict,
        )
        self._activity_slots = asyncio.Semaphore(self.settings.max_concurrent_activities)
        self._executor = ThreadPoolExecutor(
            max_workers=self.settings.max_concurrent_activities, thread_name_prefix="activity"
        )
        self._inflight: set[asyncio.Task[Any]] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._recovered: set[str] = set()  # instances whose in-flight work recover() dispatched
        self._completion_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._msg_counter = 0
        self.episodes = 0

    # == lifecycle ==

    async def start(self) -> None:
        """Open the store, recover unfinished work and start the dispatch loops."""
        await self.store.open()
        await self.recover()
        loop_tasks: list[Coroutine[Any, Any, None]] = [
            self._orchestration_loop(),
            self._scheduler.run_timers(self._fire_timer),
            self._checkpointer.run(),
        ]
        self._tasks = [asyncio.create_task(t) for t in loop_tasks]

    async def stop(self) -> None:
        """Stop dispatching, let running activities finish briefly, write a last checkpoint."""
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=self.settings.stop_grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in list(self._inflight):
            task.cancel()
        await self._checkpointer.close()
        if self._inflight:  # the last checkpoint's message deletes
            await asyncio.wait(self._inflight, timeout=self.settings.stop_grace)
        await self.store.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # == public controls (tests, the benchmark) ==

    async def checkpoint(self) -> None:
        """Return once everything the engine changed before the call is in the store."""
        await self._checkpointer.checkpoint()

    def is_idle(self) -> bool:
        """True when no episode, activity, timer hand-off or entity operation is pending."""
        return self._scheduler.is_idle()

    def wake_timers(self) -> None:
        """Look at the timers again now (after a test moved a virtual clock)."""
        self._scheduler.wake_timers()

    # == helpers ==

    def _new_msg_id(self) -> str:
        # Sortable across restarts (wall time first), unique within a process (counter).
        self._msg_counter += 1
        return f"{time.time_ns():020d}{self._msg_counter:08d}"

    def _mark_ready(self, instance: Instance) -> None:
        self._scheduler.mark_ready(instance)

    def _deliver(
        self, instance: Instance, event: dict[str, Any], message: StoredMessage | None = None
    ) -> None:
        self._scheduler.deliver(instance, event, message)

    def _touch(self, instance: Instance) -> None:
        self.instances.move_to_end(instance.instance_id)

    def _cache(self, instance: Instance) -> None:
        self.instances[instance.instance_id] = instance
        self.instances.move_to_end(instance.instance_id)
        self._evict()

    def _evict(self) -> None:
        excess = len(self.instances) - self.settings.max_cached_instances
        if excess <= 0:
            return
        for instance_id in list(self.instances):
            if excess <= 0:
                break
            instance = self.instances[instance_id]
            if (
                instance.is_terminal
                and not instance.inbox
                and self._checkpointer.is_clean(instance)
            ):
                del self.instances[instance_id]
                excess -= 1

    async def _load(self, instance_id: str) -> Instance | None:
        """The instance from memory, or rebuilt from the store (terminal ones are read-only)."""
        instance = self.instances.get(instance_id)
        if instance is not None:
            self._touch(instance)
            return instance
        row = await self.store.read_instance(instance_id)
        if row is None:
            return None
        stored = await self.store.read_history(instance_id)
        repaired = False
        if stored is not None and stored.execution_id != row.execution_id:
            # A checkpoint writes the history, then the row (as DTFx does); it died in between.
            # The history is the record: the row is rebuilt from it and written again.
            row = _row_from_history(row, stored.events)
            repaired = row.execution_id == stored.execution_id
        instance = _instance_from_row(row)
        if stored is not None and stored.execution_id == row.execution_id:
            instance.history = stored.events
            instance.parent = _parent_from_history(stored.events)
        # Another episode may have cached it while we awaited the store.
        if instance_id in self.instances:
            return self.instances[instance_id]
        self._checkpointer.adopt(instance, stored, repaired=repaired)
        self._cache(instance)
        return instance

    def _check_function(self, kind: str, name: str) -> str | None:
        lookup = {"activity": self.index.activity, "orchestrator": self.index.orchestrator}[kind]
        if lookup(name) is not None or (kind == "activity" and name.lower() in self.overrides):
            return None
        known = {"activity": self.index.activities, "orchestrator": self.index.orchestrators}[kind]
        return known_functions_message(kind, name, lambda: [f.durable_name for f in known.values()])

    # == client operations (Backend) ==

    async def start_new(self, name: str, instance_id: str | None, input_json: str | None) -> str:
        info = self.index.orchestrator(name)
        if info is None:
            raise InvalidRequest(
                known_functions_message(
                    "orchestrator",
                    name,
                    lambda: [f.durable_name for f in self.index.orchestrators.values()],
                )
            )
        existing = None
        generated = not instance_id
        if instance_id:  # a generated ID is new: no need to ask the store whether it exists
            _validate_instance_id(instance_id)
            existing = await self._load(instance_id)
        instance_id = instance_id or uuid.uuid4().hex
        if existing is not None and self._blocks_start(existing):
            raise InstanceAlreadyExists(
                f"An Orchestration instance with the status {existing.status} already exists."
            )
        now = self.clock.now()
        execution_id = uuid.uuid4().hex
        # A generated ID is recorded as its Pending row, as DTFx records a start (one request,
        # no queue message to delete later); recover() runs a Pending row with no history. A
        # caller's ID may have left history behind (a purge cut short by a crash), which would
        # read as newer than a row with no history: its start is queued, and the earlier
        # execution's history and inbox watermark stay the record until the new one's first
        # checkpoint replaces them.
        message = None
        if not generated:
            message = StoredMessage(
                msg_id=self._new_msg_id(),
                instance_id=instance_id,
                body={
                    "kind": "start",
                    "name": info.durable_name,
                    "executionId": execution_id,
                    "input": input_json,
                    "created": now.isoformat(),
                },
            )
        # Nothing is processed until the start is durable: an acknowledged start must never
        # depend on memory alone.
        if message is None:
            pending_row = Instance(
                instance_id=instance_id,
                name=info.durable_name,
                execution_id=execution_id,
                status="Pending",
                created=now,
                updated=now,
                input=input_json,
            )
            await self.store.write_row(pending_row.row())
        else:
            await self.store.put_message(message)
        self._begin_execution(
            instance_id, info.durable_name, execution_id, input_json, now, message=message
        )
        return instance_id

    def _blocks_start(self, instance: Instance) -> bool:
        if self.settings.overridable_states.lower() == "anystate":
            return False
        return instance.status in RUNNING_STATUSES

    def _begin_execution(
        self,
        instance_id: str,
        name: str,
        execution_id: str,
        input_json: str | None,
        now: datetime,
        parent: dict[str, Any] | None = None,
        *,
        deliver: bool = True,
        message: StoredMessage | None = None,
    ) -> tuple[Instance, dict[str, Any]]:
        instance = self.instances.get(instance_id)  # a new execution keeps what is stored
        if instance is not None:
            dropped = instance.begin_execution(name, execution_id, input_json, now, parent)
            self._checkpointer.record(
                instance, consumed=[p.message for p in dropped if p.message is not None]
            )
            self._touch(instance)
        else:
            instance = Instance(
                instance_id=instance_id,
                name=name,
                execution_id=execution_id,
                status="Pending",
                created=now,
                updated=now,
                input=input_json,
                parent=parent,
            )
            self._cache(instance)
        started = execution_started(now, instance_id, execution_id, name, input_json, parent)
        if deliver:
            self._deliver(instance, started, message)
        return instance, started

    async def _accept(self, instance: Instance, event: dict[str, Any], kind: str) -> None:
        """Make a client's event durable, then hand it to the instance."""
        message = StoredMessage(
            msg_id=self._new_msg_id(),
            instance_id=instance.instance_id,
            body={"kind": kind, "executionId": instance.execution_id, "event": event},
        )
        await self.store.put_message(message)
        self._deliver(instance, event, message)

    async def _running_instance(self, instance_id: str) -> Instance:
        instance = await self._load(instance_id)
        if instance is None:
            raise InstanceNotFound(instance_id)
        if instance.is_terminal:
            raise InstanceGone(instance_id)
        return instance

    async def raise_event(self, instance_id: str, event_name: str, input_json: str | None) -> None:
        instance = await self._running_instance(instance_id)
        event = new_event(
            EventType.EventRaised, self.clock.now(), Name=event_name, Input=input_json
        )
        await self._accept(instance, event, "event")

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        instance = await self._running_instance(instance_id)
        event = new_event(EventType.ExecutionTerminated, self.clock.now(), Input=reason)
        await self._accept(instance, event, "terminate")

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        instance = await self._running_instance(instance_id)
        if instance.status == "Suspended":
            raise InvalidOperation(f"Instance '{instance_id}' is already suspended.")
        event = new_event(EventType.ExecutionSuspended, self.clock.now(), Reason=reason)
        await self._accept(instance, event, "suspend")

    async def resume(self, instance_id: str, reason: str | None) -> None:
        instance = await self._running_instance(instance_id)
        if instance.status != "Suspended":
            raise InvalidOperation(f"Instance '{instance_id}' is not suspended.")
        event = new_event(EventType.ExecutionResumed, self.clock.now(), Reason=reason)
        await self._accept(instance, event, "resume")

    async def rewind(self, instance_id: str, reason: str | None) -> None:
        instance = await self._load(instance_id)
        if instance is None:
            raise InstanceNotFound(instance_id)
        if instance.status in ("Completed", "Terminated", "Canceled"):
            raise InstanceGone(instance_id)
        if instance.status != "Failed":
            raise InvalidOperation(
                f"Instance '{instance_id}' is {instance.status}; "
                "only failed instances can be rewound."
            )
        # The instance and every failed sub-orchestration below it are rewound together. Each
        # gets its own durable message before anything changes in memory, so a crash before
        # the next checkpoint replays the rewind from the inbox (see _redeliver).
        targets = [instance, *await self._failed_children(instance)]
        now = self.clock.now()
        deliveries = []
        for target in targets:
            event = new_event(EventType.GenericEvent, now, Data=reason or "")
            message = StoredMessage(
                msg_id=self._new_msg_id(),
                instance_id=target.instance_id,
                body={"kind": "rewind", "executionId": target.execution_id, "event": event},
            )
            await self.store.put_message(message)
            deliveries.append((target, event, message))
        for target, event, message in deliveries:
            self._rewind_history(target, now)
            self._deliver(target, event, message)

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
            child = await self._load(child_id) if child_id else None
            if child is not None and child.status == "Failed":
                children += [child, *await self._failed_children(child)]
        return children

    def _rewind_history(self, instance: Instance, now: datetime) -> None:
        """Rewrite the failed parts of the history as ``GenericEvent`` rows, as DTFx does.

        Azure Storage's RewindHistoryAsync keeps each row and changes its ``EventType`` to
        GenericEvent with ``Reason`` "Rewound: <type>": every TaskFailed and its TaskScheduled,
        every SubOrchestrationInstanceFailed (its Created row stays: the rewound child reports
        back) and the failed ExecutionCompleted. The replay then schedules the failed work again
        with the same sequence numbers. The instance is Pending until its next episode.
        """
        failed_tasks = {
            e.get("TaskScheduledId")
            for e in instance.history
            if e["EventType"] == EventType.TaskFailed
        }
        first_changed = len(instance.history)
        for index, event in enumerate(instance.history):
            kind = event["EventType"]
            if (
                kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed)
                or (kind == EventType.TaskScheduled and event["EventId"] in failed_tasks)
                or kind == EventType.ExecutionCompleted
            ):
                instance.history[index] = {
                    **event,
                    "EventType": int(EventType.GenericEvent),
                    "Reason": f"Rewound: {EventType(kind).name}",
                }
                first_changed = min(first_changed, index)
        instance.status = "Pending"
        instance.output = None
        instance.completed = None
        # The store rewrites rows from here on (same row keys), then appends what follows.
        self._changed(instance, now, rewritten_from=first_changed)

    async def restart(self, instance_id: str, new_instance_id: bool) -> str:
        instance = await self._load(instance_id)
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

    async def get_status(self, instance_id: str, options: StatusOptions) -> dict[str, Any] | None:
        instance = await self._load(instance_id)
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

    async def list_instances(
        self, query: InstanceQuery, top: int, continuation: str | None, show_input: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        await self._checkpointer.checkpoint()  # the store answers queries; make it current
        rows, token = await self.store.query_instances(query, top, continuation)
        return [status_object(self._fresh_row(row), show_input=show_input) for row in rows], token

    def _fresh_row(self, row: InstanceRow) -> InstanceRow:
        instance = self.instances.get(row.instance_id)
        return instance.row() if instance is not None else row

    async def purge(self, instance_id: str) -> int:
        instance = await self._load(instance_id)
        if instance is None:
            raise InstanceNotFound(instance_id)
        if not instance.is_terminal:
            return 0
        await self._checkpointer.write(instance)
        self.instances.pop(instance_id, None)
        return 1 if await self.store.delete_instance(instance_id) else 0

    async def purge_many(
        self, created_from: datetime, created_to: datetime | None, statuses: list[str]
    ) -> int:
        await self._checkpointer.checkpoint()
        query = InstanceQuery(
            runtime_status=statuses or sorted(TERMINAL_STATUSES),
            created_from=created_from,
            created_to=created_to or self.clock.now(),
        )
        deleted = 0
        token: str | None = None
        while True:
            rows, token = await self.store.query_instances(query, 100, token)
            for row in rows:
                if row.runtime_status in TERMINAL_STATUSES:
                    self.instances.pop(row.instance_id, None)
                    deleted += 1 if await self.store.delete_instance(row.instance_id) else 0
            if not token:
                return deleted

    async def wait_for_completion(self, instance_id: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            instance = await self._load(instance_id)
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

    async def signal_entity(
        self, name: str, key: str, operation: str, input_json: str | None
    ) -> None:
        await self.entities.signal_from_client(name, key, operation, input_json)

    async def read_entity(self, name: str, key: str) -> tuple[bool, str | None]:
        return await self.entities.read(name, key)

    async def list_entities(
        self, name: str | None, top: int, continuation: str | None, fetch_state: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        await self._checkpointer.checkpoint()
        return await self.entities.list(name, top, continuation, fetch_state)

    # == orchestration episodes ==

    async def _orchestration_loop(self) -> None:
        while True:
            await self._scheduler.wait_ready()
            processed = 0
            while (instance := self._scheduler.take_ready()) is not None:
                instance_id = instance.instance_id
                if self.instances.get(instance_id) is not instance:
                    continue
                try:
                    self._run_episode(instance)
                except Exception:
                    log.exception("Episode of %s failed inside the host", instance_id)
                processed += 1
                if processed % 16 == 0:
                    await asyncio.sleep(0)  # let HTTP handlers and activity results in
            self._check_idle()

    def _run_episode(self, instance: Instance) -> None:
        pending, instance.inbox = instance.inbox, []
        unrun = _unrun_episode(instance.history)
        if not pending and unrun is None:
            return
        if instance.is_terminal:
            # Messages for a finished instance are dropped, as the real backend does.
            dropped = [p.message for p in pending if p.message is not None]
            self._checkpointer.record(instance, consumed=dropped, changed=False)
            return
        now = self.clock.now()
        new_events: list[dict[str, Any]] = []
        started = new_event(EventType.OrchestratorStarted, now)
        if unrun is not None:
            # A new generation's first episode (ExecutionStarted and the carried-over events),
            # recorded by the continue-as-new but not run yet: run it now, with what came since.
            started, *new_events = instance.history[unrun:]
            instance.history = instance.history[:unrun]
            self._checkpointer.record(instance, rewritten_from=unrun, changed=False)
        terminate: dict[str, Any] | None = None
        suspended = instance.status == "Suspended"
        consumed: list[StoredMessage] = []
        for item in pending:
            event = item.event
            kind = event["EventType"]
            if item.message is not None:
                consumed.append(item.message)
            if kind == EventType.ExecutionTerminated:
                new_events.append(event)
                terminate = event
                break
            if kind == EventType.ExecutionSuspended and not suspended:
                suspended = True
                new_events.append(event)
            elif kind == EventType.ExecutionResumed and suspended:
                suspended = False
                new_events.append(event)
                new_events.extend(held.event for held in instance.held)
                instance.held = []
            elif suspended:
                instance.held.append(Pending(event))
                if item.message is not None:
                    consumed.remove(item.message)
            elif kind not in (EventType.ExecutionSuspended, EventType.ExecutionResumed):
                new_events.append(event)
        self._checkpointer.record(instance, consumed=consumed, changed=False)
        if not new_events:
            return
        if terminate is not None:
            self._finish(
                instance,
                [*instance.history, started, *new_events],
                Outcome("Terminated", terminate.get("Input")),
                next_seq=None,
                now=now,
            )
            return
        if suspended:
            instance.history.extend(
                [started, *new_events, new_event(EventType.OrchestratorCompleted, now)]
            )
            instance.status = "Suspended"
            self._changed(instance, now)
            return
        self._execute(instance, started, new_events, now)

    def _execute(
        self, instance: Instance, started: dict, new_events: list[dict], now: datetime
    ) -> None:
        self.episodes += 1
        past = instance.history
        history = [*past, started, *new_events]
        info = self.index.orchestrator(instance.name)
        if info is None:
            message = known_functions_message(
                "orchestrator",
                instance.name,
                lambda: [f.durable_name for f in self.index.orchestrators.values()],
            )
            self._finish(
                instance,
                history,
                Outcome("Failed", f"Orchestrator function '{instance.name}' failed: {message}"),
                None,
                now,
            )
            return
        reply, crash = invoke_orchestrator(info, self._context_json(instance, history))
        if reply is None:
            failure = Outcome(
                "Failed", f"Orchestrator function '{instance.name}' failed: {crash}", details=crash
            )
            self._finish(instance, history, failure, None, now)
            return
        replay = self._host_replay(instance, history, reply)
        result = replay.run(new_events_from=len(past))
        custom = reply.get("customStatus")
        instance.custom_status = (
            None if custom is None else json.dumps(custom, separators=(",", ":"))
        )
        history.extend(result.new_events)
        if instance.status == "Pending":
            instance.status = "Running"
        if result.outcome is not None:
            self._finish(instance, history, result.outcome, replay.next_seq, now)
        else:
            history.append(new_event(EventType.OrchestratorCompleted, now))
            instance.history = history
            self._changed(instance, now)
        for work in result.new_work:
            self._dispatch(instance, work)

    def _host_replay(
        self, instance: Instance, history: list[dict[str, Any]], reply: dict[str, Any]
    ) -> HostReplay:
        return HostReplay(
            instance_id=instance.instance_id,
            execution_id=instance.execution_id,
            orchestrator_name=instance.name,
            history=history,
            reply=reply,
            check_function=self._check_function,
            parent_instance_id=instance.parent_instance_id,
        )

    def _context_json(self, instance: Instance, history: list[dict[str, Any]]) -> str:
        """The orchestration trigger payload (protocol notes §2.1, §2.4)."""
        last_started = max(
            (i for i, e in enumerate(history) if e["EventType"] == EventType.OrchestratorStarted),
            default=0,
        )
        events = [
            e if e.get("IsPlayed") == (i < last_started) else {**e, "IsPlayed": i < last_started}
            for i, e in enumerate(history)
        ]
        stored_input = history[1].get("Input") if len(history) > 1 else None
        return json.dumps(
            {
                "history": events,
                "input": json.loads(stored_input) if stored_input is not None else None,
                "instanceId": instance.instance_id,
                "isReplaying": last_started > 1,
                "parentInstanceId": instance.parent_instance_id,
                "upperSchemaVersion": 1,
                "upperSchemaVersionNew": 2,
                "longRunningTimerIntervalDuration": "3.00:00:00",
                "maximumShortTimerDuration": "6.00:00:00",
                "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
            }
        )

    def _finish(
        self,
        instance: Instance,
        history: list[dict[str, Any]],
        outcome: Outcome,
        next_seq: int | None,
        now: datetime,
    ) -> None:
        seq = -1 if next_seq is None else next_seq
        if outcome.status == "ContinuedAsNew":
            history.append(
                new_event(
                    EventType.ContinueAsNew,
                    now,
                    seq,
                    OrchestrationStatus=int(OrchestrationStatus.ContinuedAsNew),
                    Result=outcome.result,
                )
            )
            history.append(new_event(EventType.OrchestratorCompleted, now))
            self._continue_as_new(instance, outcome, now)
            return
        status = OrchestrationStatus[outcome.status]
        details = outcome.details if status == OrchestrationStatus.Failed else None
        history.append(
            new_event(
                EventType.ExecutionCompleted,
                now,
                seq,
                OrchestrationStatus=int(status),
                Result=outcome.result,
                FailureDetails=None
                if details is None
                else {
                    "ErrorType": "OrchestrationFailure",
                    "ErrorMessage": outcome.result,
                    "StackTrace": details,
                },
            )
        )
        history.append(new_event(EventType.OrchestratorCompleted, now))
        instance.history = history
        instance.status = outcome.status
        instance.output = outcome.result
        instance.completed = now
        instance.held = []
        self._changed(instance, now)
        if status == OrchestrationStatus.Failed:
            log.warning("%s (%s) failed: %s", instance.name, instance.instance_id, outcome.result)
        self._notify_parent(instance, outcome)
        for waiter in self._completion_waiters.pop(instance.instance_id, []):
            if not waiter.done():
                waiter.set_result(None)

    def _continue_as_new(self, instance: Instance, outcome: Outcome, now: datetime) -> None:
        instance.execution_id = uuid.uuid4().hex
        instance.generation += 1
        instance.input = outcome.result
        instance.created = now
        instance.status = "Running"
        self._changed(instance, now)
        started = execution_started(
            now,
            instance.instance_id,
            instance.execution_id,
            instance.name,
            outcome.result,
            instance.parent,
            instance.generation,
        )
        # The new generation's first events go into its history at once (as DTFx starts the new
        # runtime state with them), so the checkpoint that ends the old generation, and deletes
        # the messages of the carried-over events, already holds them: a crash before the new
        # generation ran loses neither its start nor an event. The next episode runs them.
        instance.history = [
            new_event(EventType.OrchestratorStarted, now),
            started,
            *outcome.carryover,
        ]
        self._mark_ready(instance)

    def _changed(
        self, instance: Instance, now: datetime, *, rewritten_from: int | None = None
    ) -> None:
        instance.updated = now
        self._checkpointer.record(instance, rewritten_from=rewritten_from)

    def _notify_parent(self, child: Instance, outcome: Outcome) -> None:
        if not child.parent:
            return
        parent = self.instances.get(child.parent_instance_id or "")
        parent_execution = child.parent["OrchestrationInstance"]["ExecutionId"]
        if parent is None or parent.is_terminal or parent.execution_id != parent_execution:
            return
        self._deliver(parent, _child_result_event(child, outcome, self.clock.now()))

    # == work ==

    def _dispatch(self, instance: Instance, work: Work) -> None:
        if work.kind == "activity":
            self._spawn(self._run_activity(instance.instance_id, instance.execution_id, work))
        elif work.kind == "http":
            self._spawn(self._run_http(instance.instance_id, instance.execution_id, work))
        elif work.kind == "timer":
            if not work.canceled:
                assert work.fire_at is not None
                self._scheduler.schedule_timer(
                    work.fire_at, instance.instance_id, instance.execution_id, work.seq
                )
        elif work.kind == "suborchestration":
            self._start_child(instance, work)
        elif work.kind in ("entity_call", "entity_signal"):
            assert work.instance_id is not None and work.request is not None
            # Sent with the sender's next checkpoint, durable first, as DTFx sends outbound
            # messages before it commits the history: a signal recorded as EventSent is never
            # lost in a crash, and calls and signals reach an entity in the order sent.
            message = StoredMessage(
                msg_id=self._new_msg_id(),
                instance_id=work.instance_id,
                body={"kind": "request", "request": work.request},
            )
            self._checkpointer.send(instance, message)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Host task failed", exc_info=task.exception())
        self._check_idle()

    async def _run_activity(self, instance_id: str, execution_id: str, work: Work) -> None:
        async with self._activity_slots:
            override = self.overrides.get(work.name.lower())
            info = self.index.activity(work.name)
            if override is not None:
                ok, result, error = await _run_override(override, work.input)
            else:
                assert info is not None
                ok, result, error = await invoke_activity(info, work.input, self._executor)
        now = self.clock.now()
        if ok:
            event = new_event(EventType.TaskCompleted, now, TaskScheduledId=work.seq, Result=result)
        else:
            name = info.durable_name if info is not None else work.name
            reason, details = activity_failure(name, error)
            event = new_event(
                EventType.TaskFailed, now, TaskScheduledId=work.seq, Reason=reason, Details=details
            )
        self._deliver_to_execution(instance_id, execution_id, event)

    async def _run_http(self, instance_id: str, execution_id: str, work: Work) -> None:
        from devhost.engine.http_activity import run_http_request  # aiohttp only when used

        assert work.request is not None
        async with self._activity_slots:
            ok, value = await run_http_request(work.request)
        now = self.clock.now()
        if ok:
            event = new_event(EventType.TaskCompleted, now, TaskScheduledId=work.seq, Result=value)
        else:
            event = new_event(
                EventType.TaskFailed, now, TaskScheduledId=work.seq, Reason=value, Details=None
            )
        self._deliver_to_execution(instance_id, execution_id, event)

    def _deliver_to_execution(
        self, instance_id: str, execution_id: str, event: dict[str, Any]
    ) -> None:
        instance = self.instances.get(instance_id)
        if instance is None or instance.execution_id != execution_id or instance.is_terminal:
            return
        self._deliver(instance, event)

    def _start_child(self, parent: Instance, work: Work) -> None:
        child_id = work.instance_id
        assert child_id is not None
        child = self.instances.get(child_id)
        parent_ref = {
            "Name": parent.name,
            "Version": "",
            "TaskScheduleId": work.seq,
            "OrchestrationInstance": {
                "InstanceId": parent.instance_id,
                "ExecutionId": parent.execution_id,
            },
        }
        if child is not None and child.parent == parent_ref:
            if child.is_terminal:  # recovered parent: the child already finished
                self._deliver(
                    parent, _child_result_event(child, _outcome_of(child), self.clock.now())
                )
            return
        info = self.index.orchestrator(work.name)
        assert info is not None
        # The extension serialises the action's input string once more, so the child's stored
        # input is a JSON string literal, like one started by the Python client (§3.8, §2.6).
        input_json = None if work.input is None else json.dumps(work.input)
        self._begin_execution(
            child_id, info.durable_name, uuid.uuid4().hex, input_json, self.clock.now(), parent_ref
        )

    # == timers ==

    def _fire_timer(self, instance_id: str, execution_id: str, seq: int, fire_at: datetime) -> None:
        event = new_event(
            EventType.TimerFired, self.clock.now(), TimerId=seq, FireAt=dotnet_time(fire_at)
        )
        self._deliver_to_execution(instance_id, execution_id, event)

    def _busy(self) -> bool:
        return bool(self._inflight) or self.entities.busy()

    def _is_idle(self) -> bool:
        return self._scheduler.is_idle()

    def _check_idle(self) -> None:
        self._scheduler.check_idle()

    async def _durable_if_finished(self, instance: Instance) -> None:
        """Write a finished instance now if its end is not in the store yet.

        The real host answers status from the Instances table, so a client never sees an
        output that a crash could still take back (a re-run activity may answer differently).
        This host answers from memory; a finished instance is therefore written before its
        status is shown, instead of waiting for the next group commit.
        """
        if instance.is_terminal:
            await self._checkpointer.write(instance)

    # == recovery ==

    async def recover(self) -> None:
        """Reload unfinished instances and undelivered messages after a (possibly unclean) stop."""
        query = InstanceQuery(runtime_status=sorted(RUNNING_STATUSES))
        token: str | None = None
        recovered: list[Instance] = []
        while True:
            rows, token = await self.store.query_instances(query, 500, token)
            for row in rows:
                if row.name.startswith("@"):
                    continue
                instance = await self._load(row.instance_id)
                if instance is not None:
                    recovered.append(instance)
            if not token:
                break
        for instance in recovered:
            self._redispatch(instance)
        self._recovered = {instance.instance_id for instance in recovered}
        messages = await self.store.read_messages()
        stale: list[StoredMessage] = []
        for message in messages:
            if not await self._redeliver(message):
                stale.append(message)
        if stale:
            await self.store.delete_messages(stale)
        if recovered or messages:
            log.info(
                "Recovered %d instances and %d messages", len(recovered), len(messages) - len(stale)
            )

    def _redispatch(self, instance: Instance) -> None:
        """Re-run the orchestrator on its history to find in-flight work, and dispatch it."""
        if not instance.history and instance.status == "Pending":
            # A start recorded as its Pending row that never ran.
            started = execution_started(
                instance.created,
                instance.instance_id,
                instance.execution_id,
                instance.name,
                instance.input,
            )
            self._deliver(instance, started)
            return
        if _unrun_episode(instance.history) is not None:
            self._mark_ready(instance)  # a generation that never ran: its first episode does it
            return
        if len(instance.history) < 2:
            return
        info = self.index.orchestrator(instance.name)
        if info is None:
            return
        reply, _ = invoke_orchestrator(info, self._context_json(instance, instance.history))
        if reply is None:
            return
        result = self._host_replay(instance, instance.history, reply).run(
            new_events_from=len(instance.history)
        )
        for work in result.open_work:
            self._dispatch(instance, work)

    async def _redeliver(self, message: StoredMessage) -> bool:
        body = message.body
        instance = (
            await self._load(message.instance_id)
            if not message.instance_id.startswith("@")
            else None
        )
        if message.instance_id.startswith("@"):
            return await self.entities.redeliver(message)
        if instance is not None and not instance.is_terminal:
            if instance.instance_id not in self._recovered:
                # Its row still showed an earlier, finished run (a torn checkpoint), so
                # recover() did not pick it up; its history says it runs.
                self._recovered.add(instance.instance_id)
                self._redispatch(instance)
        if instance is not None and message.msg_id <= instance.durable.watermark:
            return False
        if body["kind"] == "rewind" and instance is not None and instance.status == "Failed":
            # Acknowledged, but the rewritten history never reached the store.
            self._rewind_history(instance, self.clock.now())
        if body["kind"] == "start":
            if (
                instance is not None
                and instance.execution_id == body["executionId"]
                and instance.history
            ):
                return False
            created = datetime.fromisoformat(body["created"])
            self._begin_execution(
                message.instance_id,
                body["name"],
                body["executionId"],
                body["input"],
                created,
                message=message,
            )
            return True
        if instance is None or instance.is_terminal:
            return False
        self._deliver(instance, body["event"], message)
        return True


# == module helpers ==


def _unrun_episode(history: list[dict[str, Any]]) -> int | None:
    """Where the recorded but not yet run episode starts (its OrchestratorStarted), if any.

    Every episode that ran ends with OrchestratorCompleted; only a continue-as-new records the
    next generation's opening events ahead of running them."""
    if not history or history[-1]["EventType"] == EventType.OrchestratorCompleted:
        return None
    for index in range(len(history) - 1, -1, -1):
        if history[index]["EventType"] == EventType.OrchestratorStarted:
            return index
    return None


def _validate_instance_id(instance_id: str) -> None:
    """DurableClient.StartNewAsync's rules (protocol notes §7.1)."""
    if (
        not instance_id
        or instance_id.startswith("@")
        or _INVALID_ID.search(instance_id)
        or len(instance_id) > 256
    ):
        raise InvalidRequest(
            f"Instance ID '{instance_id}' is not valid: it must not be empty, start with '@', "
            "contain '/', '\\', '#', '?' or control characters, or exceed 256 characters."
        )


def _row_from_history(row: InstanceRow, history: list[dict[str, Any]]) -> InstanceRow:
    """The instance row as a committed history says it is (the row write after it was lost)."""
    started = next((e for e in history if e["EventType"] == EventType.ExecutionStarted), None)
    if started is None:
        return row
    status, output, completed = "Running", None, None
    for event in history:
        event_type = event["EventType"]
        if event_type == EventType.ExecutionSuspended:
            status = "Suspended"
        elif event_type == EventType.ExecutionResumed:
            status = "Running"
        elif event_type == EventType.ExecutionCompleted:
            status = OrchestrationStatus(event["OrchestrationStatus"]).name
            output, completed = event.get("Result"), parse_time(event["Timestamp"])
    parent = started.get("ParentInstance")
    return replace(
        row,
        name=started["Name"],
        execution_id=started["OrchestrationInstance"]["ExecutionId"],
        runtime_status=status,
        created_time=parse_time(started["Timestamp"]),
        last_updated_time=parse_time(history[-1]["Timestamp"]),
        input=started.get("Input"),
        output=output,
        completed_time=completed,
        generation=started.get("Generation") or 0,
        parent_instance_id=parent["OrchestrationInstance"]["InstanceId"] if parent else None,
    )


def _instance_from_row(row: InstanceRow) -> Instance:
    return Instance(
        instance_id=row.instance_id,
        name=row.name,
        execution_id=row.execution_id,
        status=row.runtime_status,
        created=row.created_time,
        updated=row.last_updated_time,
        input=row.input,
        output=row.output,
        custom_status=row.custom_status,
        completed=row.completed_time,
        generation=row.generation,
    )


def _parent_from_history(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    for event in history[:3]:
        if event["EventType"] == EventType.ExecutionStarted:
            return event.get("ParentInstance")
    return None


def _outcome_of(child: Instance) -> Outcome:
    return Outcome(child.status, child.output)


def _child_result_event(child: Instance, outcome: Outcome, now: datetime) -> dict[str, Any]:
    assert child.parent is not None
    seq = child.parent["TaskScheduleId"]
    if outcome.status == "Completed":
        return new_event(
            EventType.SubOrchestrationInstanceCompleted,
            now,
            TaskScheduledId=seq,
            Result=outcome.result,
        )
    return new_event(
        EventType.SubOrchestrationInstanceFailed,
        now,
        TaskScheduledId=seq,
        Reason=outcome.result,
        Details=outcome.details,
    )


async def _run_override(
    override: ActivityOverride, input_text: str | None
) -> tuple[bool, str | None, str]:
    """Run a test's stand-in for an activity with the same encoding as the real thing."""
    from azure.functions import _durable_functions as codec

    from devhost.engine.invoke import _failure_text

    try:
        value = codec.df_loads(input_text) if input_text is not None else None
        result = override(value)
        if asyncio.iscoroutine(result):
            result = await result
        encoded = codec.df_dumps(result)
    except Exception as exc:
        return False, None, _failure_text(exc)
    return (
        True,
        (None if encoded == "null" else json.dumps(json.loads(encoded), separators=(",", ":"))),
        "",
    )
