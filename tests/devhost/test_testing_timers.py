"""Timer-triggered functions in the in-process test host (``DurableTestHost(timers=...)``): they
run on its virtual clock, with the real listener's schedule, status and ``isPastDue``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from devhost.app.loader import index_app
from devhost.testing import DurableTestHost
from devhost.timers.monitor import MemoryTimerState

JOB = "nightly_report"


def _app(seen: list[dict[str, Any]]) -> Any:
    """Every five minutes (a schedule from a setting), a timer function starts an orchestration
    through its durable client."""
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.timer_trigger(schedule="%REPORT_SCHEDULE%", arg_name="timer")
    @app.durable_client_input(client_name="client")
    async def nightly_report(
        timer: func.TimerRequest, client: df.DurableOrchestrationClient
    ) -> None:
        instance_id = await client.start_new("report", None, {"pastDue": timer.past_due})
        seen.append({"past_due": timer.past_due, "instance": instance_id})

    @app.orchestration_trigger(context_name="context")
    def report(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
        return (yield context.call_activity("count_rows", context.get_input()))

    @app.activity_trigger(input_name="request")
    def count_rows(request: dict[str, Any]) -> int:
        return 7

    return app


def _host(seen: list[dict[str, Any]], state: MemoryTimerState | None = None) -> DurableTestHost:
    return DurableTestHost(
        index=index_app(_app(seen)),
        virtual_time="manual",
        timers={"REPORT_SCHEDULE": "0 */5 * * * *"},
        timer_state=state,
    )


def _until_next(host: DurableTestHost) -> timedelta:
    assert host.timers is not None
    when = host.timers.next_occurrences[JOB]
    assert when is not None, "the host holds the timer's lock"
    return when - host.now()


async def test_moving_the_clock_past_an_occurrence_runs_the_function_once() -> None:
    """Short of the next occurrence nothing runs; past it the function runs once and what it
    started has finished when ``elapse`` returns; an hour's jump runs it once more, not twelve
    times."""
    seen: list[dict[str, Any]] = []
    async with _host(seen) as host:
        assert host.timers is not None
        await host.elapse(_until_next(host) - timedelta(seconds=1))
        assert seen == []

        await host.elapse(timedelta(seconds=2))

        assert [call["past_due"] for call in seen] == [False]
        status = await host.status(seen[0]["instance"])
        assert status is not None and status["runtimeStatus"] == "Completed", status
        assert status["output"] == 7

        await host.elapse(timedelta(hours=1))
        assert len(seen) == 2
        assert host.timers.runs[JOB] == 2


async def test_an_occurrence_missed_while_no_host_ran_runs_at_the_next_start_past_due() -> None:
    """The schedule status is kept in the state the hosts share: a host started after a missed
    occurrence runs the function at once, with ``isPastDue`` true, as the Functions host does."""
    seen: list[dict[str, Any]] = []
    state = MemoryTimerState()
    async with _host(seen, state) as host:
        await host.elapse(_until_next(host) + timedelta(seconds=1))
        assert [call["past_due"] for call in seen] == [False]
        stopped_at = host.now()

    later = _host(seen, state)
    later.clock.advance_to(stopped_at + timedelta(minutes=30))  # down over six occurrences
    async with later:
        await later.elapse(timedelta(0))
        assert [call["past_due"] for call in seen] == [False, True]
        status = await later.status(seen[1]["instance"])
        assert status is not None and status["runtimeStatus"] == "Completed", status
