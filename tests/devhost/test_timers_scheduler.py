"""Timer listeners as the Functions host runs them (devhost/timers/scheduler.py), on a virtual
clock with statuses and locks in memory; tests/devhost/test_timers_storage.py keeps them in
Azurite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from devhost.app.loader import index_app
from devhost.engine.clock import VirtualClock
from devhost.timers.monitor import MemoryTimerState
from devhost.timers.scheduler import TimerScheduler, timer_functions
from devhost.web.binding import client_binding_json
from tests.waiting import eventually

START = datetime(2026, 3, 2, 10, 2, 30, tzinfo=UTC)
Call = dict[str, Any]


def _request_seen(timer: func.TimerRequest, context: func.Context | None = None) -> Call:
    return {
        "past_due": timer.past_due,
        "status": dict(timer.schedule_status),
        "schedule": dict(timer.schedule),
        "context": context.function_name if context is not None else None,
    }


def _app(calls: list[Call], **trigger: Any) -> Any:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", **trigger)
    def every_five_minutes(timer: func.TimerRequest, context: func.Context) -> None:
        calls.append(_request_seen(timer, context))

    return app


class Hosts:
    """Schedulers over one shared state (the storage account), on one virtual clock."""

    def __init__(self) -> None:
        self.clock = VirtualClock(START, auto_advance=False)
        self.shared = MemoryTimerState()
        self.running: list[TimerScheduler] = []

    async def start(
        self, app: Any, client_binding: Callable[[], str] | None = None
    ) -> TimerScheduler:
        timers = timer_functions(index_app(app), {}, self.clock.now())
        scheduler = TimerScheduler(
            timers,
            self.shared.for_host(),
            self.clock,
            client_binding=client_binding,
            lock_retry_seconds=0.05,
        )
        await scheduler.start()
        self.running.append(scheduler)
        return scheduler

    async def stop(self, scheduler: TimerScheduler) -> None:
        self.running.remove(scheduler)
        await scheduler.stop()

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        for scheduler in self.running:
            scheduler.wake()


@pytest.fixture
async def hosts() -> AsyncIterator[Hosts]:
    created = Hosts()
    yield created
    for scheduler in list(created.running):
        await created.stop(scheduler)


async def _runs(calls: list[Call], count: int) -> None:
    await eventually(lambda: len(calls) >= count, f"{count} run(s) of the timer function")
    await asyncio.sleep(0.05)  # and no more than that
    assert len(calls) == count, calls


async def test_runs_at_each_occurrence_with_the_status_it_ran_for(hosts):
    """At 10:05:00 the function runs once; its TimerRequest is the worker's, with Next = 10:05."""
    calls: list[Call] = []
    scheduler = await hosts.start(_app(calls))
    assert scheduler.next_occurrences["every_five_minutes"] == START.replace(minute=5, second=0)

    hosts.advance(timedelta(minutes=2))
    await asyncio.sleep(0.05)
    assert calls == []
    hosts.advance(timedelta(seconds=30))
    await _runs(calls, 1)

    assert calls[0]["past_due"] is False
    assert calls[0]["schedule"] == {"AdjustForDST": True}
    assert calls[0]["context"] == "every_five_minutes"
    assert calls[0]["status"]["Next"] == "2026-03-02T10:05:00+00:00"
    assert calls[0]["status"]["Last"] == "0001-01-01T00:00:00+00:00"
    assert scheduler.next_occurrences["every_five_minutes"] == START.replace(minute=10, second=0)


async def test_a_jump_over_many_occurrences_runs_once(hosts):
    """As after a sleeping machine: the host's timer fires once, then the next is from now."""
    calls: list[Call] = []
    scheduler = await hosts.start(_app(calls))

    hosts.advance(timedelta(hours=1))
    await _runs(calls, 1)

    assert scheduler.next_occurrences["every_five_minutes"] == START.replace(
        hour=11, minute=5, second=0
    )


async def test_the_status_is_recorded_and_a_missed_occurrence_runs_after_a_restart(hosts):
    """use_monitor (the default): Last/Next/LastUpdated are written after each run; a host
    that starts after Next runs the function once at once, past_due true."""
    calls: list[Call] = []
    first = await hosts.start(_app(calls))
    hosts.advance(timedelta(minutes=2, seconds=30))
    await _runs(calls, 1)
    await hosts.stop(first)
    recorded = hosts.shared.statuses["every_five_minutes"]
    assert set(recorded) == {"Last", "Next", "LastUpdated"}
    assert recorded["Next"] == "2026-03-02T10:10:00+00:00"
    ran_at = datetime.fromisoformat(recorded["Last"])
    assert START.replace(minute=5, second=0) <= ran_at < START.replace(minute=5, second=1)
    assert recorded["LastUpdated"] == recorded["Last"]

    hosts.advance(timedelta(minutes=20))  # the host is down over three occurrences
    await hosts.start(_app(calls))
    await _runs(calls, 2)

    assert calls[1]["past_due"] is True
    assert calls[1]["status"]["Next"] == "2026-03-02T10:10:00+00:00"


async def test_without_the_monitor_nothing_missed_is_run(hosts):
    calls: list[Call] = []
    first = await hosts.start(_app(calls, use_monitor=False))
    hosts.advance(timedelta(minutes=2, seconds=30))
    await _runs(calls, 1)
    await hosts.stop(first)

    hosts.advance(timedelta(minutes=20))
    await hosts.start(_app(calls, use_monitor=False))
    await asyncio.sleep(0.1)

    assert len(calls) == 1
    assert calls[0]["status"] == {}  # ScheduleStatus is null without the monitor
    assert "every_five_minutes" not in hosts.shared.statuses


async def test_run_on_startup_runs_once_at_start(hosts):
    calls: list[Call] = []
    await hosts.start(_app(calls, run_on_startup=True))

    await _runs(calls, 1)
    assert calls[0]["past_due"] is False


async def test_one_host_runs_the_schedule_and_another_takes_over_when_it_stops(hosts):
    """The listener lock: two hosts of one app, one runner; the second runs after the first
    stops."""
    first_calls: list[Call] = []
    second_calls: list[Call] = []
    first = await hosts.start(_app(first_calls))
    second = await hosts.start(_app(second_calls))
    assert second.next_occurrences["every_five_minutes"] is None

    hosts.advance(timedelta(minutes=2, seconds=30))
    await _runs(first_calls, 1)
    assert second_calls == []

    await hosts.stop(first)
    await eventually(
        lambda: second.next_occurrences["every_five_minutes"], "the second host to take the lock"
    )
    hosts.advance(timedelta(minutes=5))
    await _runs(second_calls, 1)
    assert len(first_calls) == 1


async def test_a_failing_run_is_logged_and_the_schedule_goes_on(hosts, caplog):
    attempts: list[datetime] = []
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
    async def flaky(timer: func.TimerRequest) -> None:
        attempts.append(hosts.clock.now())
        raise RuntimeError("storage was down")

    scheduler = await hosts.start(app)
    hosts.advance(timedelta(minutes=2, seconds=30))
    await eventually(lambda: len(attempts) == 1, "the first run")
    hosts.advance(timedelta(minutes=5))
    await eventually(lambda: len(attempts) == 2, "the run after the failed one")

    assert "Executed 'Functions.flaky' (Failed" in caplog.text
    assert "storage was down" in caplog.text
    assert scheduler.runs["flaky"] == 2


async def test_a_durable_client_gets_the_binding(hosts):
    seen: list[Any] = []
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.timer_trigger(schedule="0 0 3 * * *", arg_name="timer", run_on_startup=True)
    @app.durable_client_input(client_name="client")
    async def nightly(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
        seen.append(client._orchestration_bindings.task_hub_name)

    binding = client_binding_json("http://127.0.0.1:1", "hub1")
    await hosts.start(app, client_binding=lambda: binding)

    await eventually(lambda: seen, "the run on startup")
    assert seen == ["hub1"]


async def test_a_host_stopped_as_the_clock_moves_stops(hosts):
    """Stopping the listeners in the same moment as a wake-up (a test that fails right after
    moving the clock, Ctrl-C as a clock check fires) ends them; it used to wait forever."""
    for _ in range(5):
        scheduler = await hosts.start(_app([]))
        hosts.advance(timedelta(seconds=1))  # wakes the listener
        stopping = asyncio.ensure_future(hosts.stop(scheduler))
        # Not a timeout around stop(): stop() swallows the cancellation it would send.
        done, _ = await asyncio.wait({stopping}, timeout=30)
        assert done, "stop() did not return within 30 s"
