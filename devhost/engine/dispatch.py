"""Dispatch: carrying out the work an episode scheduled.

Activities (sync ones in a thread pool sized by ``maxConcurrentActivityFunctions``, async ones
on the loop) and ``call_http`` run as background tasks and report back as history events;
timers go to the scheduler; sub-orchestrations are started by the engine; entity calls and
signals go out with the sender's next checkpoint. Every background task is tracked, so the
engine knows when it rests and ``stop()`` can let them finish.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from devhost.app.loader import FunctionIndex
from devhost.engine.activity_threads import ActivityThreads
from devhost.engine.checkpointer import Checkpointer
from devhost.engine.clock import Clock
from devhost.engine.history import EventType, new_event
from devhost.engine.instance import Instance
from devhost.engine.invoke import activity_failure, invoke_activity, run_override
from devhost.engine.messages import MessageIds
from devhost.engine.replay import Work
from devhost.engine.scheduling import Scheduler
from devhost.store.base import StoredMessage

log = logging.getLogger("devhost.engine")

ActivityOverride = Callable[[Any], Any]
DeliverToExecution = Callable[[str, str, dict[str, Any]], None]
StartChild = Callable[[Instance, Work], None]
RecoverChild = Callable[[Instance, Work], Coroutine[Any, Any, None]]


class Dispatcher:
    """Runs activities and HTTP calls, arms timers, starts children, sends entity requests.

    Parameters
    ----------
    deliver
        ``deliver(instance_id, execution_id, event)``: a result for an execution, dropped if
        that execution is no longer current.
    start_child
        Starts a sub-orchestration the episode scheduled just now.
    recover_child
        Finds (in the store, too) a sub-orchestration a recovered instance had scheduled,
        or starts it.
    on_done
        Called when a background task ends (the engine may be at rest).
    """

    def __init__(
        self,
        index: FunctionIndex,
        clock: Clock,
        scheduler: Scheduler,
        checkpointer: Checkpointer,
        ids: MessageIds,
        *,
        max_concurrent_activities: int,
        overrides: dict[str, ActivityOverride],
        deliver: DeliverToExecution,
        start_child: StartChild,
        recover_child: RecoverChild,
        on_done: Callable[[], None],
    ) -> None:
        self._index = index
        self._clock = clock
        self._scheduler = scheduler
        self._checkpointer = checkpointer
        self._ids = ids
        self._overrides = {k.lower(): v for k, v in overrides.items()}
        self._deliver = deliver
        self._start_child = start_child
        self._recover_child = recover_child
        self._on_done = on_done
        self._slots = asyncio.Semaphore(max_concurrent_activities)
        self._threads = ActivityThreads(max_concurrent_activities, "activity")
        self._inflight: set[asyncio.Future[Any]] = set()
        # Activities and HTTP calls dispatched and not reported back yet, by instance ID.
        self._working: Counter[str] = Counter()

    def has_override(self, name: str) -> bool:
        return name.lower() in self._overrides

    def busy(self) -> bool:
        return bool(self._inflight)

    def working_for(self, instance_id: str) -> bool:
        """An activity or HTTP call of ``instance_id`` runs (or waits for a slot): its result,
        and so the instance's next episode, is coming."""
        return instance_id in self._working

    def dispatch(self, instance: Instance, work: Work, *, recovered: bool = False) -> None:
        """Carry out ``work``; ``recovered``: it may have been under way in an earlier
        process (in flight when the host last stopped, or scheduled by an episode of a
        recovered instance, which may be one a crash took back)."""
        if work.kind == "activity":
            self._working[instance.instance_id] += 1
            self.spawn(self._run_activity(instance.instance_id, instance.execution_id, work))
        elif work.kind == "http":
            self._working[instance.instance_id] += 1
            self.spawn(self._run_http(instance.instance_id, instance.execution_id, work))
        elif work.kind == "timer":
            if not work.canceled:
                assert work.fire_at is not None
                self._scheduler.schedule_timer(
                    work.fire_at, instance.instance_id, instance.execution_id, work.seq
                )
        elif work.kind == "suborchestration":
            if recovered:
                self.spawn(self._recover_child(instance, work))
            else:
                self._start_child(instance, work)
        elif work.kind in ("entity_call", "entity_signal"):
            assert work.instance_id is not None and work.request is not None
            # Sent with the sender's next checkpoint, durable first, as DTFx sends outbound
            # messages before it commits the history: a signal recorded as EventSent is never
            # lost in a crash, and calls and signals reach an entity in the order sent.
            message = StoredMessage(
                msg_id=self._ids.new(),
                instance_id=work.instance_id,
                body={"kind": "request", "request": work.request},
            )
            self._checkpointer.send(instance, message)

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "Host task failed", exc_info=task.exception(), extra={"event": "host_task_failed"}
            )
        self._on_done()

    def _reported(self, instance_id: str) -> None:
        self._working[instance_id] -= 1
        if self._working[instance_id] <= 0:
            del self._working[instance_id]

    async def _run_activity(self, instance_id: str, execution_id: str, work: Work) -> None:
        try:
            await self._activity(instance_id, execution_id, work)
        finally:
            self._reported(instance_id)

    async def _activity(self, instance_id: str, execution_id: str, work: Work) -> None:
        async with self._slots:
            began = time.monotonic()
            override = self._overrides.get(work.name.lower())
            info = self._index.activity(work.name)
            if override is not None:
                ok, result, error = await run_override(override, work.input)
            else:
                assert info is not None
                ok, result, error = await invoke_activity(info, work.input, self._threads)
        now = self._clock.now()
        if ok:
            event = new_event(EventType.TaskCompleted, now, TaskScheduledId=work.seq, Result=result)
        else:
            name = info.durable_name if info is not None else work.name
            reason, details = activity_failure(name, error)
            log.warning(
                "Activity %s of %s failed: %s",
                name,
                instance_id,
                reason,
                extra={
                    "instance_id": instance_id,
                    "workflow": name,
                    "event": "activity_failed",
                    "duration_ms": round((time.monotonic() - began) * 1000, 1),
                },
            )
            event = new_event(
                EventType.TaskFailed, now, TaskScheduledId=work.seq, Reason=reason, Details=details
            )
        self._deliver(instance_id, execution_id, event)

    async def _run_http(self, instance_id: str, execution_id: str, work: Work) -> None:
        try:
            await self._http(instance_id, execution_id, work)
        finally:
            self._reported(instance_id)

    async def _http(self, instance_id: str, execution_id: str, work: Work) -> None:
        from devhost.engine.http_activity import run_http_request  # aiohttp only when used

        assert work.request is not None
        async with self._slots:
            ok, value = await run_http_request(work.request)
        now = self._clock.now()
        if ok:
            event = new_event(EventType.TaskCompleted, now, TaskScheduledId=work.seq, Result=value)
        else:
            event = new_event(
                EventType.TaskFailed, now, TaskScheduledId=work.seq, Reason=value, Details=None
            )
        self._deliver(instance_id, execution_id, event)

    async def drain(self, timeout: float) -> None:
        """Let running tasks finish for up to ``timeout`` seconds."""
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=timeout)

    def cancel(self) -> None:
        for task in list(self._inflight):
            task.cancel()

    def shutdown(self) -> None:
        self._threads.shutdown()


def child_input(work: Work) -> str | None:
    """The stored input of a sub-orchestration: the extension serialises the action's input
    string once more, so it is a JSON string literal, like a client's start (§3.8, §2.6)."""
    return None if work.input is None else json.dumps(work.input)
