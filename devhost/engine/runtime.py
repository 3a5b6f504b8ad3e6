"""The orchestration engine: the part of the Functions host and the Durable extension that
drives a Python app's orchestrations, activities, entities and timers.

``Engine`` composes the parts, each the one owner of its state:

* ``cache.InstanceCache``: instances in memory, loaded (and repaired) from the store;
* ``scheduling.Scheduler``: the ready queue, the timer heap, rest;
* ``episode``: runs one episode, returns what it did;
* ``dispatch.Dispatcher``: activities, HTTP calls, timers, children, entity requests;
* ``checkpointer.Checkpointer``: the one writer of what is persisted, in a fixed order;
* ``client.ClientOperations``: what a client asks, durable before it is answered;
* ``entities.EntityHost``: durable entities;
* ``recovery``: what happens at start-up.

How it keeps the "nothing acknowledged is lost" promise cheaply: whatever a client is told
was accepted is durable before the answer; everything else the engine produces (activity
results, fired timers, a child's result) can be produced again from what is stored. So
running instances live in memory and are checkpointed by a group commit in the background,
and ``recover()`` resumes what was under way after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devhost.app.loader import FunctionIndex
from devhost.engine import recovery
from devhost.engine.api import Backend, StatusOptions
from devhost.engine.cache import InstanceCache
from devhost.engine.checkpointer import Checkpointer
from devhost.engine.client import ClientOperations
from devhost.engine.clock import Clock
from devhost.engine.dispatch import ActivityOverride, Dispatcher, child_input
from devhost.engine.entities import EntityHost
from devhost.engine.episode import EpisodeResult, failed_episode, run_episode
from devhost.engine.history import EventType, dotnet_time, new_event
from devhost.engine.instance import Instance
from devhost.engine.invoke import known_functions_message
from devhost.engine.messages import MessageIds
from devhost.engine.replay import Outcome, Work
from devhost.engine.scheduling import Scheduler
from devhost.store.base import InstanceQuery, Store, StoredMessage

__all__ = ["ActivityOverride", "Engine", "EngineSettings"]

log = logging.getLogger("devhost.engine")

# Episodes run before the loop lets HTTP handlers and activity results in.
_EPISODES_PER_TURN = 16
# Work an episode schedules that acts outside the host: started once the episode is stored.
# (Timers are armed at once; entity requests already travel with the checkpoint.)
_AFTER_WRITE = frozenset({"activity", "http", "suborchestration"})


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
        self.episodes = 0
        self._ids = MessageIds()
        self._scheduler = Scheduler(self.clock, busy=self._busy)
        self._checkpointer = Checkpointer(
            store,
            interval=self.settings.checkpoint_interval,
            max_delay=self.settings.checkpoint_max_delay,
            hand_off=self._hand_off,
            spawn=self._spawn,
            after_flush=self._after_flush,
            settled=self._scheduler.check_idle,
            working=lambda instance_id: self._dispatcher.working_for(instance_id),
        )
        self._cache = InstanceCache(
            store, self._checkpointer, self.settings.max_cached_instances, self._on_loaded
        )
        self._dispatcher = Dispatcher(
            index,
            self.clock,
            self._scheduler,
            self._checkpointer,
            self._ids,
            max_concurrent_activities=self.settings.max_concurrent_activities,
            overrides=activity_overrides or {},
            deliver=self._deliver_to_execution,
            start_child=self._start_child,
            recover_child=self._recover_child,
            on_done=self._scheduler.check_idle,
        )
        self.entities = EntityHost(
            index,
            store,
            self.clock,
            self._ids,
            self._checkpointer,
            deliver=self._deliver_answer,
            on_idle=self._scheduler.check_idle,
        )
        self._client = ClientOperations(
            index,
            store,
            self.clock,
            self._ids,
            self._cache,
            self._checkpointer,
            self._scheduler,
            self.entities,
            overridable_states=self.settings.overridable_states,
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False

    # == lifecycle ==

    async def start(self) -> None:
        """Open the store, recover unfinished work and start the loops."""
        await self.store.open()
        await recovery.recover(self.store, self._cache, self._redeliver)
        self._tasks = [
            asyncio.create_task(self._run_episodes()),
            asyncio.create_task(self._scheduler.run_timers(self._fire_timer)),
            asyncio.create_task(self._checkpointer.run()),
        ]

    async def stop(self) -> None:
        """Stop dispatching, let running activities finish briefly, write a last checkpoint."""
        # Work whose episode is stored from now on is left to the next start (recovery runs
        # what the stored history scheduled): started now, its result would not be recorded.
        self._stopping = True
        await self._dispatcher.drain(self.settings.stop_grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._dispatcher.cancel()
        await self._checkpointer.close()
        await self._dispatcher.drain(self.settings.stop_grace)  # the last message deletes
        await self.store.close()
        self._dispatcher.shutdown()

    # == public controls (tests, the benchmark) ==

    @property
    def instances(self) -> Mapping[str, Instance]:
        """The orchestration instances in memory (read-only)."""
        return self._cache.view

    async def checkpoint(self) -> None:
        """Return once everything the engine changed before the call is in the store."""
        await self._checkpointer.checkpoint()

    def is_idle(self) -> bool:
        """True when no episode, activity, entity operation or background write is pending."""
        return self._scheduler.is_idle()

    def wake_timers(self) -> None:
        """Look at the timers again now (after a test moved a virtual clock)."""
        self._scheduler.wake_timers()

    # == client operations (Backend) ==

    async def start_new(self, name: str, instance_id: str | None, input_json: str | None) -> str:
        return await self._client.start_new(name, instance_id, input_json)

    async def raise_event(self, instance_id: str, event_name: str, input_json: str | None) -> None:
        await self._client.raise_event(instance_id, event_name, input_json)

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        await self._client.terminate(instance_id, reason)

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        await self._client.suspend(instance_id, reason)

    async def resume(self, instance_id: str, reason: str | None) -> None:
        await self._client.resume(instance_id, reason)

    async def rewind(self, instance_id: str, reason: str | None) -> None:
        await self._client.rewind(instance_id, reason)

    async def restart(self, instance_id: str, new_instance_id: bool) -> str:
        return await self._client.restart(instance_id, new_instance_id)

    async def get_status(self, instance_id: str, options: StatusOptions) -> dict[str, Any] | None:
        return await self._client.get_status(instance_id, options)

    async def list_instances(
        self, query: InstanceQuery, top: int, continuation: str | None, show_input: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        return await self._client.list_instances(query, top, continuation, show_input)

    async def purge(self, instance_id: str) -> int:
        return await self._client.purge(instance_id)

    async def purge_many(
        self, created_from: datetime, created_to: datetime | None, statuses: list[str]
    ) -> int:
        return await self._client.purge_many(created_from, created_to, statuses)

    async def wait_for_completion(self, instance_id: str, timeout: float) -> dict[str, Any] | None:
        return await self._client.wait_for_completion(instance_id, timeout)

    async def signal_entity(
        self, name: str, key: str, operation: str, input_json: str | None
    ) -> None:
        await self._client.signal_entity(name, key, operation, input_json)

    async def read_entity(self, name: str, key: str) -> tuple[bool, str | None]:
        return await self._client.read_entity(name, key)

    async def list_entities(
        self, name: str | None, top: int, continuation: str | None, fetch_state: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        return await self._client.list_entities(name, top, continuation, fetch_state)

    # == episodes ==

    async def _run_episodes(self) -> None:
        while True:
            await self._scheduler.wait_ready()
            processed = 0
            while (instance := self._scheduler.take_ready()) is not None:
                self._episode(instance)
                processed += 1
                if processed % _EPISODES_PER_TURN == 0:
                    await asyncio.sleep(0)
            self._scheduler.check_idle()

    def _episode(self, instance: Instance) -> None:
        if self._cache.get(instance.instance_id) is not instance:
            return  # purged while it waited
        pending, instance.inbox = instance.inbox, []
        now = self.clock.now()
        try:
            result = run_episode(instance, pending, self.index, now, self._check_function)
        except Exception as error:
            log.exception(
                "Episode of %s failed inside the host",
                instance.instance_id,
                extra={
                    "instance_id": instance.instance_id,
                    "workflow": instance.name,
                    "event": "episode_failed",
                },
            )
            if instance.is_terminal:
                instance.inbox[:0] = pending  # dropped with its messages by the next episode
                return
            result = failed_episode(instance, pending, error, now)
        if result is not None:
            self._apply(instance, result, now)

    def _apply(self, instance: Instance, result: EpisodeResult, now: datetime) -> None:
        """Record a finished episode: the instance, its checkpoint, its work, who waits."""
        if result.ran:
            self.episodes += 1
        result.apply_to(instance, now)
        outcome = result.outcome
        ended = outcome is not None and result.next_generation is None
        self._checkpointer.record(
            instance,
            consumed=result.consumed,
            rewritten_from=result.rewritten_from,
            changed=result.changed,
            # A parent learns of its child's end once that end is stored (as in DTFx, where
            # it is a message sent with the child's checkpoint).
            then=self._parent_notice(instance, outcome) if ended and instance.parent else None,
        )
        now_work = [w for w in result.work if w.kind not in _AFTER_WRITE]
        stored_first = [w for w in result.work if w.kind in _AFTER_WRITE]
        for work in now_work:
            self._dispatcher.dispatch(instance, work, recovered=instance.recovered)
        if stored_first:
            execution = instance.execution_id
            # Work with effects outside the host starts only once the episode that scheduled
            # it is stored, as DTFx sends an activity's message with the checkpoint that
            # records its TaskScheduled. Started before, a kill could take the episode back
            # after the work ran; the re-run after recovery may see its events in another
            # order (a client's cancel before an answer sent again) and never schedule it: a
            # charge no history records and nothing compensates (docs/chaos.md, seed 13402).
            self._checkpointer.after_stored(
                instance,
                lambda: self._dispatch_stored(instance, execution, stored_first),
                history=True,
            )
        if outcome is None:
            return
        if result.next_generation is not None:
            self._scheduler.mark_ready(instance)  # the new generation's first episode
            return
        # The fields devhost/log_format.py writes (a plain dict: the engine does not import
        # the command line's layer).
        fields = {
            "instance_id": instance.instance_id,
            "workflow": instance.name,
            "event": outcome.status.lower(),
            "duration_ms": round((now - instance.created).total_seconds() * 1000, 1),
            "status": outcome.status,
        }
        if outcome.status == "Failed":
            log.warning(
                "%s (%s) failed: %s",
                instance.name,
                instance.instance_id,
                outcome.result,
                extra=fields,
            )
        else:
            log.info("%s (%s) %s", instance.name, instance.instance_id, fields["event"],
                     extra=fields)  # fmt: skip
        self._client.finished(instance.instance_id)

    def _dispatch_stored(self, instance: Instance, execution: str, work: list[Work]) -> None:
        """Start the work an episode of ``execution`` scheduled, now that it is stored."""
        if (
            self._stopping
            or self._cache.get(instance.instance_id) is not instance
            or instance.execution_id != execution
        ):
            # Stopping, purged, or replaced by a new execution (a start over a running
            # instance, overridableExistingInstanceStates=AnyState) while the write was under
            # way: its result would be taken for the new execution's.
            return
        # A recovered instance looks for a child in the store before starting it (an earlier
        # life may have started it under the same ID).
        for item in work:
            self._dispatcher.dispatch(instance, item, recovered=instance.recovered)

    def _check_function(self, kind: str, name: str) -> str | None:
        lookup = {"activity": self.index.activity, "orchestrator": self.index.orchestrator}[kind]
        if lookup(name) is not None or (kind == "activity" and self._dispatcher.has_override(name)):
            return None
        known = {"activity": self.index.activities, "orchestrator": self.index.orchestrators}[kind]
        return known_functions_message(kind, name, known)

    # == deliveries between the parts ==

    def _deliver_to_execution(
        self, instance_id: str, execution_id: str, event: dict[str, Any]
    ) -> None:
        instance = self._cache.get(instance_id)
        if instance is None or instance.execution_id != execution_id or instance.is_terminal:
            return
        self._scheduler.deliver(instance, event)

    def _deliver_answer(self, instance_id: str, execution_id: str, event: dict[str, Any]) -> None:
        """An entity's answer, delivered only to an execution whose history holds the call.

        After a crash the entity may answer a request that an earlier incarnation of the
        caller sent (its outbox is sent before its history is written) but whose
        ``EventSent`` the stored history lacks. Recorded now, the answer would precede the
        call; the SDK matches an answer only to a call sent before it, and the entity
        answers the call, when the caller sends it again, from the requests it applied, so
        the caller would wait for ever. Dropped, that later answer is the one recorded.
        """
        instance = self._cache.get(instance_id)
        if instance is None or instance.execution_id != execution_id or instance.is_terminal:
            return
        if not _sent_request(instance.history, event["Name"]):
            log.debug("Answer %s to %s precedes its call; dropped", event["Name"], instance_id)
            return
        self._scheduler.deliver(instance, event)

    def _fire_timer(self, instance_id: str, execution_id: str, seq: int, fire_at: datetime) -> None:
        event = new_event(
            EventType.TimerFired, self.clock.now(), TimerId=seq, FireAt=dotnet_time(fire_at)
        )
        self._deliver_to_execution(instance_id, execution_id, event)

    def _hand_off(self, message: StoredMessage) -> None:
        self.entities.send(message)

    def _spawn(self, coro: Any) -> None:
        self._dispatcher.spawn(coro)

    def _busy(self) -> bool:
        return self._dispatcher.busy() or self.entities.busy() or self._checkpointer.busy()

    def _after_flush(self) -> None:
        self._cache.evict()

    def _on_loaded(self, instance: Instance) -> None:
        recovery.redispatch(
            instance,
            index=self.index,
            check_function=self._check_function,
            client=self._client,
            scheduler=self._scheduler,
            dispatcher=self._dispatcher,
            checkpointer=self._checkpointer,
        )

    async def _redeliver(self, message: StoredMessage) -> bool:
        return await recovery.redeliver(
            message,
            cache=self._cache,
            client=self._client,
            scheduler=self._scheduler,
            entities=self.entities,
            ids=self._ids,
            clock=self.clock,
            checkpointer=self._checkpointer,
        )

    # == sub-orchestrations ==

    def _start_child(self, parent: Instance, work: Work) -> None:
        """Start the sub-orchestration an episode of ``parent`` scheduled."""
        assert work.instance_id is not None
        child = self._cache.get(work.instance_id)
        reference = _parent_reference(parent, work)
        if child is not None and child.parent == reference:
            # Scheduled again after a crash lost the episode that scheduled it first.
            if child.is_terminal:
                self._checkpointer.after_stored(child, self._parent_notice(child, None))
            return
        info = self.index.orchestrator(work.name)
        assert info is not None
        now = self.clock.now()
        execution_id = _child_execution_id(reference, work.instance_id)
        if child is None:
            child = Instance(
                instance_id=work.instance_id,
                name=info.durable_name,
                execution_id=execution_id,
                status="Pending",
                created=now,
                updated=now,
                input=child_input(work),
                parent=reference,
            )
            self._cache.add(child)
        else:
            dropped = child.begin_execution(
                info.durable_name, execution_id, child_input(work), now, reference
            )
            self._checkpointer.record(
                child, consumed=[p.message for p in dropped if p.message is not None]
            )
        self._client.begin(child, None)

    async def _recover_child(self, parent: Instance, work: Work) -> None:
        """A recovered parent waits for this child: find it (in the store, too), or start it."""
        assert work.instance_id is not None
        execution = parent.execution_id
        child = await self._cache.load(work.instance_id)
        if parent.execution_id != execution or parent.is_terminal:
            return
        if child is not None and child.parent == _parent_reference(parent, work):
            if child.is_terminal:
                self._checkpointer.after_stored(child, self._parent_notice(child, None))
            return  # running: it reports when it ends
        self._start_child(parent, work)

    def _parent_notice(self, child: Instance, outcome: Outcome | None) -> Callable[[], None]:
        """Tells the parent how ``child`` ended (``outcome``, or as its row says)."""
        ended = outcome or Outcome(child.status, child.output)
        return lambda: self._notify_parent(child, ended)

    def _notify_parent(self, child: Instance, outcome: Outcome) -> None:
        if not child.parent:
            return
        seq = child.parent["TaskScheduleId"]
        now = self.clock.now()
        if outcome.status == "Completed":
            event = new_event(
                EventType.SubOrchestrationInstanceCompleted,
                now,
                TaskScheduledId=seq,
                Result=outcome.result,
            )
        else:
            event = new_event(
                EventType.SubOrchestrationInstanceFailed,
                now,
                TaskScheduledId=seq,
                Reason=outcome.result,
                Details=outcome.details,
            )
        parent = child.parent["OrchestrationInstance"]
        self._deliver_to_execution(parent["InstanceId"], parent["ExecutionId"], event)


def _sent_request(history: list[dict[str, Any]], request_id: str) -> bool:
    """Whether ``history`` records sending the entity request ``request_id``."""
    for event in reversed(history):
        if event["EventType"] != EventType.EventSent:
            continue
        text = event.get("Input") or ""
        if request_id in text and json.loads(text).get("id") == request_id:
            return True
    return False


_CHILD_EXECUTION_NAMESPACE = uuid.UUID("b7e4a0d2-5c1f-4e86-9d3a-2f6c8e1b0a97")


def _child_execution_id(reference: dict[str, Any], child_id: str) -> str:
    """The execution of a sub-orchestration, derived from the parent's execution and the
    call's sequence number: started again after a crash took back its first checkpoint, the
    child runs the same execution, and the entity requests its episodes send keep their IDs
    (a signal stored before the crash is recognised, not applied twice)."""
    parent = reference["OrchestrationInstance"]
    key = f"{child_id}_{parent['InstanceId']}_{parent['ExecutionId']}_{reference['TaskScheduleId']}"
    return uuid.uuid5(_CHILD_EXECUTION_NAMESPACE, key).hex


def _parent_reference(parent: Instance, work: Work) -> dict[str, Any]:
    """The ``ParentInstance`` of a sub-orchestration's ExecutionStarted."""
    return {
        "Name": parent.name,
        "Version": "",
        "TaskScheduleId": work.seq,
        "OrchestrationInstance": {
            "InstanceId": parent.instance_id,
            "ExecutionId": parent.execution_id,
        },
    }
