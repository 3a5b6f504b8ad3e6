"""The threads that run synchronous activities, and the hand-off of their results to the loop.

``loop.run_in_executor`` on a ``ThreadPoolExecutor`` costs, for each call, a concurrent
future (with its lock and condition), an asyncio future chained to it by two callbacks, and
one wake-up of the loop through its self-pipe per result. An orchestration's activities are
short and many (HelloSequence5: five), so the hand-off is a measurable share of the host's
CPU. Here a job is a function and the loop's own future; a thread that finishes one appends
the outcome to a list and wakes the loop only if no wake-up is pending, so results that
finish while the loop is busy are handed over together (docs/benchmarks.md, "Where the
latency goes").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["ActivityThreads"]

_T = TypeVar("_T")

# A job: the function, the future its caller awaits, and the loop that future belongs to.
_Job = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]
_STOP = None  # put once per thread to end it


class _Shared:
    """What the threads use: the pool itself is not referenced by them, so an engine dropped
    without ``stop()`` (a crash test abandons its engines) lets its threads end."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads = 0
        self.idle = 0  # threads waiting for a job that no submitted job has claimed yet
        # Outcomes not handed to the loop yet, and whether a wake-up of that loop is pending.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.finished: list[tuple[asyncio.Future[Any], bool, Any]] = []
        self.wake_pending = False


class ActivityThreads:
    """Runs synchronous functions on up to ``size`` threads (started as needed, named
    ``{name}_N``) and hands each result back to the awaiting coroutine.

    Parameters
    ----------
    size
        Threads at most; more jobs than that wait in order.
    name
        The threads' name prefix.
    """

    def __init__(self, size: int, name: str = "activity") -> None:
        if size < 1:
            raise ValueError(f"size must be 1 or more, not {size}")
        self._size = size
        self._name = name
        self._numbers = itertools.count()
        self._shared = _Shared()
        self._closed = False
        weakref.finalize(self, _stop_threads, self._shared)

    async def run(self, function: Callable[[], _T]) -> _T:
        """``function()`` on one of the threads; its result, or its exception raised here."""
        if self._closed:
            raise RuntimeError("the activity threads are shut down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        shared = self._shared
        shared.jobs.put((function, future, loop))
        with shared.lock:
            if shared.idle > 0:
                shared.idle -= 1
                start = False
            else:
                start = shared.threads < self._size
                shared.threads += start
        if start:
            threading.Thread(
                target=_work,
                args=(shared,),
                name=f"{self._name}_{next(self._numbers)}",
                daemon=True,
            ).start()
        return await future

    def shutdown(self) -> None:
        """Cancel the jobs not started and end the threads once their running jobs end (call
        it on the loop that awaits the jobs)."""
        self._closed = True
        shared = self._shared
        while True:
            try:
                job = shared.jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[1].cancel()
        _stop_threads(shared)


def _stop_threads(shared: _Shared) -> None:
    with shared.lock:
        threads = shared.threads
    for _ in range(threads):
        shared.jobs.put(_STOP)


def _work(shared: _Shared) -> None:
    while True:
        job = shared.jobs.get()
        if job is _STOP:
            return
        function, future, loop = job
        del job
        if future.cancelled():  # its caller stopped waiting before it started
            with shared.lock:
                shared.idle += 1
            continue
        try:
            outcome: tuple[bool, Any] = (True, function())
        except BaseException as error:  # handed to the caller, as an executor does
            outcome = (False, error)
        del function
        with shared.lock:
            shared.idle += 1
            if shared.loop is None:
                shared.loop = loop
            if shared.loop is loop:
                shared.finished.append((future, *outcome))
                call: tuple[Any, ...] | None = None if shared.wake_pending else (_hand_over, shared)
                shared.wake_pending = True
            else:
                call = (_settle, future, *outcome)
        del future, outcome
        if call is not None:
            # A loop closed meanwhile (a host stopped without waiting for this job) has
            # nobody left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(*call)
        del call, loop


def _hand_over(shared: _Shared) -> None:
    """On the loop: settle every future whose job finished since the last hand-over."""
    with shared.lock:
        finished, shared.finished = shared.finished, []
        shared.wake_pending = False
    for future, ok, value in finished:
        _settle(future, ok, value)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # cancelled while its job ran
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
