"""Testing Durable Functions apps for real, fast: the local host's engine in-process.

``DurableTestHost`` loads your function app, runs orchestrations through the real SDK replay
with an in-memory store (or Azure Storage), and a virtual clock: durable timers fire as soon
as nothing else is running, so a 72-hour deadline passes in milliseconds.

Example
-------
>>> async def test_hello_sequence():
...     async with DurableTestHost(".") as host:
...         status = await host.run("hello_sequence", {"cities": ["Tokyo"]})
...         assert status["runtimeStatus"] == "Completed"

Activities that call outside services can be replaced by name:
``DurableTestHost(".", activity_overrides={"charge_card": lambda payment: {"ok": True}})``.

Timer-triggered functions run on the virtual clock with ``timers=True`` (or a mapping of the
settings their ``%Setting%`` schedules name): ``await host.elapse(timedelta(days=1))`` moves
the clock past the next occurrence and returns once the function has run, once.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.functions import _durable_functions as codec

from devhost.app.loader import FunctionIndex, load_app
from devhost.engine.api import StatusOptions
from devhost.engine.clock import Clock, VirtualClock
from devhost.engine.collector import ScopedTuning
from devhost.engine.runtime import ActivityOverride, Engine, EngineSettings
from devhost.store.base import Store

if TYPE_CHECKING:
    from aiohttp.test_utils import TestClient

    from devhost.timers.monitor import MemoryTimerState
    from devhost.timers.scheduler import TimerScheduler


# How long a wait gives the work by default: generous, because a test suite often runs on a
# busy machine (both cores taken, CI beside other jobs); a wait that succeeds returns at once.
WAIT_SECONDS = 60.0


class OrchestrationTimeout(AssertionError):
    """The instance did not finish in time; the message shows its last status."""


def client_input(value: Any) -> str | None:
    """The stored input text for ``value`` as the Python client sends it (double-encoded)."""
    return None if value is None else json.dumps(codec.df_dumps(value))


def describe_instance(status: dict[str, Any], *, width: int = 160) -> str:
    """An instance's status and history for a person reading a failed test.

    Parameters
    ----------
    status
        ``GET instances/{id}`` with ``showHistory`` (and ``showHistoryOutput``).
    width
        Longest shown value of an input, output, result or reason.

    Returns
    -------
    str
        One line of status, then one line per history event: what ran, what it returned,
        what it waited for, so a stuck wait shows the step it is stuck on.
    """

    def short(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return text if len(text) <= width else text[: width - 3] + "..."

    lines = [
        f"runtimeStatus={status.get('runtimeStatus')} customStatus="
        f"{short(status.get('customStatus'))} lastUpdated={status.get('lastUpdatedTime')}"
    ]
    events = status.get("historyEvents") or []
    lines.append(f"history ({len(events)} events):" if events else "history: none recorded")
    for event in events:
        name = event.get("FunctionName") or event.get("Name") or ""
        shown = [f"  {event.get('Timestamp', '')} {event.get('EventType')}", name]
        for key in ("FireAt", "Result", "Reason", "Details", "Input"):
            if event.get(key) is not None:
                shown.append(f"{key}={short(event[key])}")
        lines.append(" ".join(part for part in shown if part))
    return "\n".join(lines)


def _forget_sdk_client_session() -> None:
    """Drop the durable SDK's process-wide aiohttp session and its lock.

    The SDK's client (models/utils/http_utils.py) keeps one session per process, made on the
    event loop of its first call: right for the worker, which has one loop, wrong for tests,
    which get a new loop each; the next test's client calls would fail "Event loop is closed".
    """
    from azure.durable_functions.models.utils import http_utils

    http_utils._client_session = None
    http_utils._session_lock = asyncio.Lock()


class DurableTestHost:
    """An engine with a fresh task hub, for one test.

    Parameters
    ----------
    app_dir
        The folder with ``function_app.py`` (ignored when ``index`` is given).
    index
        An already-indexed app (``devhost.app.loader.index_app(app)``), e.g. a test's own.
    store
        Defaults to a new ``MemoryStore``; pass an ``AzureStore`` to test against Azurite.
    virtual_time
        True (default): timers fire when the engine is idle. ``"manual"``: only on
        ``advance()``. False: the wall clock.
    activity_overrides
        Activity name -> callable taking the decoded input, returning the result (or raising).
    timers
        Run the app's timer-triggered functions on this host's clock, as ``devhost start``
        does: True reads ``%Setting%`` schedules from the environment, a mapping from itself
        (over the environment). Off by default.
    timer_state
        Where schedule statuses and listener locks live; share one between hosts to see a
        missed occurrence run after a restart (``isPastDue``). A new one by default.

    Notes
    -----
    From entry to exit the process's cyclic garbage collector runs as in ``devhost start``:
    what exists at entry is frozen (``gc.freeze``, unless something froze objects already) and
    young collections are rarer (``devhost.engine.collector``); both are undone at exit.
    """

    def __init__(
        self,
        app_dir: str | Path = ".",
        *,
        index: FunctionIndex | None = None,
        store: Store | None = None,
        virtual_time: bool | str = True,
        activity_overrides: dict[str, ActivityOverride] | None = None,
        task_hub: str | None = None,
        checkpoint_interval: float = 0.01,
        timers: bool | Mapping[str, str] = False,
        timer_state: MemoryTimerState | None = None,
    ) -> None:
        from devhost.store.memory import MemoryStore

        self.index = index or load_app(app_dir)
        self.task_hub = task_hub or "test" + uuid.uuid4().hex[:12]
        self.store = store or MemoryStore(self.task_hub)
        self.clock: Clock = (
            VirtualClock(auto_advance=virtual_time != "manual") if virtual_time else Clock()
        )
        self.engine = Engine(
            self.index,
            self.store,
            task_hub=self.task_hub,
            clock=self.clock,
            settings=EngineSettings(checkpoint_interval=checkpoint_interval),
            activity_overrides=activity_overrides,
        )
        self._http_clients: list[TestClient[Any, Any]] = []
        self._timer_settings = (
            None if timers is False else {**os.environ, **(timers if timers is not True else {})}
        )
        self._timer_state = timer_state
        self.timers: TimerScheduler | None = None
        """The timer listeners (``runs`` counts each function's runs), with ``timers``."""
        # The collector's settings of a host, for as long as this one runs (devhost.engine.
        # collector): the test session's process is not ours, so they are undone on exit.
        self._collector = ScopedTuning()

    async def __aenter__(self) -> DurableTestHost:
        _forget_sdk_client_session()
        self._collector.apply()
        try:
            await self.engine.start()
        except BaseException:
            self._collector.restore()
            raise
        try:
            if self._timer_settings is not None:
                await self._start_timers(self._timer_settings)
        except BaseException as error:
            # ``async with`` runs no __aexit__ for an __aenter__ that raised: stop what started
            # (the engine, an HTTP client the timers opened) and give the session's collector
            # back here, or every later test runs with the host's settings.
            await self.__aexit__(type(error), error, error.__traceback__)
            raise
        return self

    async def _start_timers(self, settings: dict[str, str]) -> None:
        """The timer listeners of ``devhost start``, on this host's clock; a function's durable
        client reaches this engine through :meth:`http`."""
        from devhost.timers.monitor import MemoryTimerState
        from devhost.timers.scheduler import TimerScheduler, timer_functions
        from devhost.web.binding import client_binding_json

        timers = timer_functions(self.index, settings, self.clock.now())
        origin = ""
        if any(timer.info.client_param for timer in timers):
            origin = str((await self.http()).make_url("")).rstrip("/")
        state = self._timer_state or MemoryTimerState()
        self.timers = TimerScheduler(
            timers,
            state.for_host(),
            self.clock,
            client_binding=lambda: client_binding_json(origin, self.task_hub),
        )
        await self.timers.start()

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self.timers is not None:
                await self.timers.stop()
            for client in self._http_clients:
                await client.close()
            await self.engine.stop()
            if self._http_clients:
                from azure.durable_functions.models.utils import http_utils

                await http_utils._close_session()
            _forget_sdk_client_session()
        finally:
            self._collector.restore()

    async def http(self, route_prefix: str = "api") -> TestClient[Any, Any]:
        """An HTTP client for the app's own routes, served in-process by the local host's front.

        Requests go through the same route table, ``HttpRequest`` conversion and durable client
        binding as ``python -m devhost start``; the client's calls reach this host's engine, so
        the virtual clock and activity overrides apply. Closed with the host.

        Parameters
        ----------
        route_prefix
            ``extensions.http.routePrefix`` of the app's host.json.

        Returns
        -------
        aiohttp.test_utils.TestClient
            ``await client.post("/api/orders", json={...})``; the durable API is under
            ``/runtime/webhooks/durabletask/``.
        """
        from aiohttp.test_utils import TestClient, TestServer

        from devhost.web.server import create_web_app

        client: TestClient[Any, Any] = TestClient(
            TestServer(create_web_app(self.index, self.engine, route_prefix=route_prefix))
        )
        await client.start_server()
        self._http_clients.append(client)
        return client

    async def start(self, name: str, input: Any = None, instance_id: str | None = None) -> str:
        """Start an orchestration as ``client.start_new`` would; returns the instance ID."""
        return await self.engine.start_new(name, instance_id, client_input(input))

    async def raise_event(
        self, instance_id: str, event_name: str, data: Any = None, *, as_client: bool = True
    ) -> None:
        """Raise an event. ``as_client=True`` encodes like the Python client (the orchestrator
        receives a JSON *string*); False like a raw HTTP request with a JSON body."""
        if data is None:
            text = None
        elif as_client:
            text = json.dumps(json.dumps(data))
        else:
            text = json.dumps(data)
        await self.engine.raise_event(instance_id, event_name, text)

    async def status(self, instance_id: str, *, history: bool = False) -> dict[str, Any] | None:
        return await self.engine.get_status(
            instance_id, StatusOptions(show_history=history, show_history_output=history)
        )

    async def wait(self, instance_id: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """Wait until the instance is terminal; raises ``OrchestrationTimeout`` otherwise,
        with the instance's status and history in the message."""
        status = await self.engine.wait_for_completion(instance_id, timeout)
        if status is None:
            raise OrchestrationTimeout(f"No instance '{instance_id}'.")
        if status["runtimeStatus"] not in ("Completed", "Failed", "Terminated", "Canceled"):
            raise OrchestrationTimeout(
                f"'{instance_id}' is still {status['runtimeStatus']} after {timeout:g} s.\n"
                + describe_instance(await self.status(instance_id, history=True) or status)
            )
        return status

    async def run(
        self, name: str, input: Any = None, timeout: float = WAIT_SECONDS
    ) -> dict[str, Any]:
        """Start an orchestration and wait for it to finish; returns its status."""
        return await self.wait(await self.start(name, input), timeout)

    async def wait_for_custom_status(
        self, instance_id: str, predicate: Any, timeout: float = WAIT_SECONDS
    ) -> dict[str, Any]:
        """Poll until ``predicate(custom_status)`` is true (e.g. a stage was reached)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            status = await self.status(instance_id)
            if status is not None and predicate(status.get("customStatus")):
                return status
            if asyncio.get_running_loop().time() > deadline:
                shown = await self.status(instance_id, history=True) or status
                raise OrchestrationTimeout(
                    f"The custom status of '{instance_id}' did not match within {timeout:g} s.\n"
                    + (describe_instance(shown) if shown else "No such instance.")
                )
            await asyncio.sleep(0.005)

    async def idle(self, timeout: float = WAIT_SECONDS) -> None:
        """Wait until no episode, activity or entity operation is pending."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.engine.is_idle():
            if asyncio.get_running_loop().time() > deadline:
                raise OrchestrationTimeout("the engine never became idle")
            await asyncio.sleep(0.002)

    def advance(self, delta: timedelta) -> None:
        """Move virtual time forward; due timers fire."""
        if not isinstance(self.clock, VirtualClock):
            raise RuntimeError("advance() needs virtual time")
        self.clock.advance(delta)
        self.engine.wake_timers()
        if self.timers is not None:
            self.timers.wake()

    async def elapse(self, delta: timedelta, timeout: float = WAIT_SECONDS) -> None:
        """:meth:`advance`, then wait until what fell due has run: timer functions whose
        occurrence passed (once each, however many occurrences passed), and what they started.
        """
        self.advance(delta)
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._timers_settled():
            if asyncio.get_running_loop().time() > deadline:
                raise OrchestrationTimeout(
                    f"timer functions still due or running after {timeout} s"
                )
            await asyncio.sleep(0.002)
        await self.idle(timeout=max(0.0, deadline - asyncio.get_running_loop().time()))

    def _timers_settled(self) -> bool:
        if self.timers is None:
            return True
        now = self.clock.now()
        due = [when for when in self.timers.next_occurrences.values() if when and when <= now]
        return not due and not self.timers.busy()

    def now(self) -> Any:
        return self.clock.now()
