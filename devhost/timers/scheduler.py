"""Running the app's timer-triggered functions as the Functions host does.

One listener per timer function, following azure-webjobs-sdk-extensions' ``TimerListener``:

- it runs only while it holds the function's listener lock (a blob lease in the real host:
  one runner per host ID, however many hosts share the storage account);
- at start, with ``use_monitor`` (the default, off for schedules more frequent than a minute),
  it reads the recorded status and runs a missed occurrence once, ``past_due`` true
  (``ScheduleMonitor.CheckPastDueAsync``); otherwise ``run_on_startup`` runs it once;
- then it sleeps until each next occurrence, runs the function, and records
  ``{Last, Next, LastUpdated}``. A failing run is logged and the schedule goes on.

The function gets the ``TimerRequest`` the Python worker builds from the host's JSON
(``{"Schedule": {"AdjustForDST"}, "ScheduleStatus": {"Last", "Next", "LastUpdated"} or null,
"IsPastDue"}``), the durable client binding if it declares one, and ``context`` if asked.

Time comes from the engine's clock, so the test host's virtual clock drives the schedules:
:meth:`TimerScheduler.wake` after moving it makes due occurrences run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.functions import meta
from azure.functions.timer import TimerRequestConverter

from devhost.app.context import InvocationContext
from devhost.app.loader import FunctionIndex, FunctionInfo
from devhost.engine.clock import Clock
from devhost.timers.monitor import NEVER, ScheduleStatus, TimerState
from devhost.timers.schedule import Schedule, ScheduleError, host_time_zone, parse_schedule

log = logging.getLogger("devhost.timers")

# SingletonOptions: a listener lease is renewed halfway through its 60 s; a host without it
# tries again every minute (ListenerLockRecoveryPollingInterval).
LEASE_RENEWAL_SECONDS = 30.0
LOCK_RETRY_SECONDS = 60.0
# How often a wait for an occurrence looks at the clock again: a wall clock may be set back or
# forward, and a virtual clock moves when the engine skips to its next durable timer.
_CLOCK_CHECK_SECONDS = {True: 0.02, False: 30.0}


@dataclass(frozen=True)
class TimerFunction:
    """One timer-triggered function and its resolved schedule."""

    info: FunctionInfo
    schedule: Schedule
    run_on_startup: bool
    use_monitor: bool

    @property
    def name(self) -> str:
        return self.info.name


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def timer_functions(
    index: FunctionIndex, settings: dict[str, str], now: datetime
) -> list[TimerFunction]:
    """The app's timer functions with their schedules (``TimerTriggerAttributeBindingProvider``).

    Raises
    ------
    ScheduleError
        For the first schedule the host would refuse, naming the function.
    """
    zone = host_time_zone(settings)
    timers = []
    for info in index.timers:
        trigger = info.trigger
        schedule = parse_schedule(info.name, str(trigger.get("schedule") or ""), settings, zone)
        # UseMonitor defaults to true; the host turns it off for sub-minute schedules.
        use_monitor = _flag(trigger.get("useMonitor"), True)
        if use_monitor and schedule.more_than_once_a_minute(now):
            use_monitor = False
        timers.append(
            TimerFunction(
                info=info,
                schedule=schedule,
                run_on_startup=_flag(trigger.get("runOnStartup"), False),
                use_monitor=use_monitor,
            )
        )
    return timers


async def check_past_due(
    state: TimerState, timer: TimerFunction, now: datetime, last: ScheduleStatus | None
) -> tuple[bool, ScheduleStatus]:
    """``ScheduleMonitor.CheckPastDueAsync``: was an occurrence missed while no host ran?

    Returns whether it was, and the status to carry on from (written back when it is new or
    when the schedule changed since it was recorded).
    """
    schedule = timer.schedule
    if last is None:
        status = ScheduleStatus(last=NEVER, next=schedule.next_after(now), last_updated=now)
        await state.write_status(timer.name, status)
        return now > status.next, status
    if last.last != NEVER:
        expected, updated = schedule.next_after(last.last), last.last
    elif last.last_updated != NEVER:
        expected, updated = schedule.next_after(last.last_updated), last.last_updated
    else:
        expected, updated = schedule.next_after(now), now
    status = last
    if last.next != expected:
        # The schedule changed since the status was written: start from the new one and do not
        # call its first occurrence missed.
        if now > expected:
            expected, updated = schedule.next_after(now), now
        status = ScheduleStatus(last=NEVER, next=expected, last_updated=updated)
        await state.write_status(timer.name, status)
    return now > status.next, status


def timer_request(timer: TimerFunction, status: ScheduleStatus | None, past_due: bool) -> Any:
    """The ``func.TimerRequest`` the worker decodes from the host's trigger JSON."""
    payload = {
        "Schedule": {"AdjustForDST": timer.schedule.adjust_for_dst},
        "ScheduleStatus": status.to_json() if status is not None else None,
        "IsPastDue": past_due,
    }
    datum = meta.Datum(json.dumps(payload), "json")
    return TimerRequestConverter.decode(datum, trigger_metadata={})


class TimerScheduler:
    """Runs the app's timer functions until stopped.

    Parameters
    ----------
    timers
        From :func:`timer_functions`.
    state
        Where statuses and listener locks live (``BlobTimerState`` on the host's account).
    clock
        The engine's clock; a virtual clock lets tests move time.
    client_binding
        Returns the durable client binding JSON, for functions that declare a client.
    lock_retry_seconds, lease_renewal_seconds
        Real-time intervals of the listener lock (the host's by default).
    """

    def __init__(
        self,
        timers: list[TimerFunction],
        state: TimerState,
        clock: Clock,
        *,
        client_binding: Callable[[], str] | None = None,
        lock_retry_seconds: float = LOCK_RETRY_SECONDS,
        lease_renewal_seconds: float = LEASE_RENEWAL_SECONDS,
    ) -> None:
        self.timers = timers
        self.state = state
        self.clock = clock
        self._client_binding = client_binding
        self._lock_retry = lock_retry_seconds
        self._renewal = lease_renewal_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._woken = asyncio.Event()
        self._running: set[str] = set()
        # Runs outlive a cancelled listener (the host waits for them on stop).
        self._runs_in_progress: set[asyncio.Future[None]] = set()
        self._started: dict[str, asyncio.Future[None]] = {}
        self.next_occurrences: dict[str, datetime | None] = {t.name: None for t in timers}
        self.runs: dict[str, int] = {t.name: 0 for t in timers}
        without = [t.name for t in timers if t.info.client_param and client_binding is None]
        if without:
            raise ScheduleError(
                f"Timer function '{without[0]}' takes a durable client, and this host has no "
                "client binding to give it."
            )

    async def start(self) -> None:
        """Start one listener per timer function; return once each has tried its lock once and,
        holding it, knows its next occurrence (``next_occurrences``)."""
        loop = asyncio.get_running_loop()
        self._started = {timer.name: loop.create_future() for timer in self.timers}
        for timer in self.timers:
            self._tasks.append(asyncio.ensure_future(self._listen(timer)))
        if self._started:
            await asyncio.wait(list(self._started.values()))

    def _has_started(self, timer: TimerFunction) -> None:
        started = self._started.get(timer.name)
        if started is not None and not started.done():
            started.set_result(None)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop listening, give runs in progress ``grace`` seconds to finish, release the locks."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._runs_in_progress:
            await asyncio.wait(self._runs_in_progress, timeout=grace)
        await self.state.close()

    def wake(self) -> None:
        """The clock moved: look again at what is due (the test host calls this)."""
        self._woken.set()

    def busy(self) -> bool:
        """Whether a timer function is running now."""
        return bool(self._running)

    # -- one listener --------------------------------------------------------------------------

    async def _listen(self, timer: TimerFunction) -> None:
        try:
            while True:
                try:
                    if await self.state.try_lock(timer.name):
                        await self._while_locked(timer)
                except Exception:
                    log.exception("The listener of timer function '%s' failed", timer.name)
                # The lock is another host's, or was lost: try again later, as the host does.
                self.next_occurrences[timer.name] = None
                self._has_started(timer)
                await asyncio.sleep(self._lock_retry)
        finally:
            await asyncio.shield(self.state.release(timer.name))

    async def _while_locked(self, timer: TimerFunction) -> None:
        """Run the schedule until the lock is lost (or the listener is cancelled)."""
        schedule = asyncio.ensure_future(self._run_schedule(timer))
        renewal = asyncio.ensure_future(self._keep_lock(timer))
        try:
            await asyncio.wait([schedule, renewal], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (schedule, renewal):
                task.cancel()
            await asyncio.gather(schedule, renewal, return_exceptions=True)
        error = None if schedule.cancelled() else schedule.exception()
        if error is not None:
            raise error

    async def _keep_lock(self, timer: TimerFunction) -> None:
        while await self.state.renew(timer.name):
            await asyncio.sleep(self._renewal)

    async def _run_schedule(self, timer: TimerFunction) -> None:
        now = self.clock.now()
        past_due = False
        status: ScheduleStatus | None = None
        if timer.use_monitor:
            recorded = await self.state.read_status(timer.name)
            past_due, status = await check_past_due(self.state, timer, now, recorded)
        if status is None:
            status = ScheduleStatus(NEVER, timer.schedule.next_after(now), NEVER)
        log.info(
            "Timer function '%s': schedule %s, next occurrence %s%s",
            timer.name,
            timer.schedule,
            status.next.isoformat(),
            " (past due: running it now)" if past_due else "",
        )
        # Startup runs happen in the background of the host's start, as the real listener
        # schedules them on a timer of one millisecond.
        self.next_occurrences[timer.name] = status.next
        self._has_started(timer)
        if past_due:
            status = await self._invoke(timer, status, past_due=True, scheduled=False)
        elif timer.run_on_startup:
            status = await self._invoke(timer, status, past_due=False, scheduled=False)
        while True:
            self.next_occurrences[timer.name] = status.next
            self._has_started(timer)
            await self._sleep_until(status.next)
            status = await self._invoke(timer, status, past_due=False, scheduled=True)

    async def _sleep_until(self, when: datetime) -> None:
        check = _CLOCK_CHECK_SECONDS[type(self.clock) is not Clock]
        while True:
            remaining = (when - self.clock.now()).total_seconds()
            if remaining <= 0:
                return
            self._woken.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives as the wake-up does, and stop() then waited for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, check)):
                    await self._woken.wait()

    async def _invoke(
        self, timer: TimerFunction, status: ScheduleStatus, *, past_due: bool, scheduled: bool
    ) -> ScheduleStatus:
        """Run the function once and return the status to go on with (``InvokeJobFunction``)."""
        invoked_at = self.clock.now()
        request = timer_request(timer, status if timer.use_monitor else None, past_due)
        run = asyncio.ensure_future(self._call(timer, request))
        self._runs_in_progress.add(run)
        run.add_done_callback(self._runs_in_progress.discard)
        await asyncio.shield(run)
        # A run that fired a moment early counts as the occurrence it was for, or the next
        # start would take the same occurrence for a missed one.
        at = max(invoked_at, status.next) if scheduled else invoked_at
        following = ScheduleStatus(last=at, next=timer.schedule.next_after(at), last_updated=at)
        if timer.use_monitor:
            await self.state.write_status(timer.name, following)
        return following

    async def _call(self, timer: TimerFunction, request: Any) -> None:
        info = timer.info
        invocation_id = str(uuid.uuid4())
        kwargs: dict[str, Any] = {info.trigger_param: request}
        if info.client_param and self._client_binding is not None:
            kwargs[info.client_param] = self._client_binding()
        with contextlib.suppress(TypeError, ValueError):
            if "context" in inspect.signature(info.func).parameters and "context" not in kwargs:
                kwargs["context"] = InvocationContext(info.name, invocation_id)
        reason = "past due" if request.past_due else "timer fired"
        log.info(
            "Executing 'Functions.%s' (Reason='%s at %s', Id=%s)",
            info.name,
            reason,
            self.clock.now().isoformat(),
            invocation_id,
        )
        started = time.perf_counter()
        self._running.add(info.name)
        try:
            if info.is_async:
                await info.func(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(None, functools.partial(info.func, **kwargs))
                if inspect.isawaitable(result):
                    await result
        except Exception:
            log.exception("Executed 'Functions.%s' (Failed, Id=%s)", info.name, invocation_id)
        else:
            log.info(
                "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
                info.name,
                invocation_id,
                (time.perf_counter() - started) * 1000,
            )
        finally:
            self._running.discard(info.name)
            self.runs[info.name] += 1


def next_occurrence_text(when: datetime | None) -> str:
    """How the banner shows a next occurrence."""
    if when is None:
        return "waiting for its lock (another host runs it)"
    return "next " + when.isoformat(timespec="seconds")


__all__ = [
    "TimerFunction",
    "TimerScheduler",
    "check_past_due",
    "next_occurrence_text",
    "timer_functions",
    "timer_request",
]
