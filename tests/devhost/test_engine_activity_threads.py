"""The threads of synchronous activities: results and failures reach the caller, at most
``size`` run at once, results that finish together are handed over in one wake-up of the
loop, and nothing is left running or waiting after a shutdown or once the pool is dropped."""

from __future__ import annotations

import asyncio
import functools
import gc
import threading
import time
from collections.abc import Callable

import pytest

from devhost.engine import activity_threads
from devhost.engine.activity_threads import ActivityThreads


async def test_a_result_and_a_failure_reach_the_caller() -> None:
    threads = ActivityThreads(2)
    assert await threads.run(lambda: "Hello Tokyo!") == "Hello Tokyo!"

    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await threads.run(fails)
    threads.shutdown()


async def test_functions_run_on_named_threads_not_the_loop() -> None:
    threads = ActivityThreads(2, "activity")
    name = await threads.run(lambda: threading.current_thread().name)
    assert name.startswith("activity_")
    assert name != threading.current_thread().name
    threads.shutdown()


async def test_at_most_size_run_at_once_and_the_rest_wait() -> None:
    threads = ActivityThreads(3)
    lock = threading.Lock()
    running = peak = 0

    together = threading.Barrier(3, timeout=30)  # the first three meet: three at once

    def work(first: bool) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        if first:
            together.wait()
        time.sleep(0.005)
        with lock:
            running -= 1

    await asyncio.gather(*(threads.run(functools.partial(work, n < 3)) for n in range(12)))
    assert peak == 3
    assert sum(t.name.startswith("activity_") for t in threading.enumerate()) >= 3
    threads.shutdown()


async def test_results_finishing_together_wake_the_loop_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed: list[int] = []
    original = activity_threads._hand_over

    def counting(shared: activity_threads._Shared) -> None:
        handed.append(len(shared.finished))
        original(shared)

    monkeypatch.setattr(activity_threads, "_hand_over", counting)
    threads = ActivityThreads(4)
    release = threading.Event()

    entered: list[int] = []

    def job(number: int) -> Callable[[], int]:
        def run() -> int:
            entered.append(number)
            release.wait()
            return number

        return run

    jobs = [asyncio.ensure_future(threads.run(job(n))) for n in range(4)]
    await _until(lambda: len(entered) == 4)  # all four are waiting on their threads
    # The loop is kept busy while the four finish: their results are handed over together.
    release.set()
    shared = threads._shared
    deadline = time.monotonic() + 30
    while True:
        with shared.lock:
            if len(shared.finished) == 4:
                break
        assert time.monotonic() < deadline, "the four jobs did not finish"
        time.sleep(0.001)
    assert await asyncio.gather(*jobs) == [0, 1, 2, 3]
    assert handed == [4]
    threads.shutdown()


async def test_a_job_whose_caller_stopped_waiting_is_not_run() -> None:
    threads = ActivityThreads(1)
    release = threading.Event()
    ran: list[str] = []
    first = asyncio.ensure_future(threads.run(release.wait))
    second = asyncio.ensure_future(threads.run(lambda: ran.append("second")))
    await asyncio.sleep(0.02)
    second.cancel()
    release.set()
    assert await first is True
    assert await threads.run(lambda: "third") == "third"
    assert ran == []
    threads.shutdown()


async def test_shutdown_cancels_the_jobs_not_started_and_ends_the_threads() -> None:
    threads = ActivityThreads(1, "shut")
    release = threading.Event()
    started = threading.Event()

    def blocks() -> bool:
        started.set()
        return release.wait()

    running = asyncio.ensure_future(threads.run(blocks))
    waiting = asyncio.ensure_future(threads.run(lambda: "never"))
    await _until(started.is_set)
    threads.shutdown()
    release.set()
    assert await running is True  # a running job ends as it would
    with pytest.raises(asyncio.CancelledError):
        await waiting
    with pytest.raises(RuntimeError):
        await threads.run(lambda: None)
    await _until(lambda: not any(t.name.startswith("shut_") for t in threading.enumerate()))


async def test_a_dropped_pool_ends_its_threads() -> None:
    """An engine abandoned without stop() (the crash tests drop hundreds) leaves no thread
    waiting for jobs once it is collected."""
    threads = ActivityThreads(2, "dropped")
    await asyncio.gather(threads.run(lambda: 1), threads.run(lambda: 2))
    del threads
    gc.collect()
    await _until(lambda: not any(t.name.startswith("dropped_") for t in threading.enumerate()))


def test_a_job_finishing_after_its_loop_closed_is_dropped_quietly() -> None:
    threads = ActivityThreads(1, "late")
    release = threading.Event()

    async def start() -> None:
        job = asyncio.ensure_future(threads.run(release.wait))
        await asyncio.sleep(0.02)
        job.cancel()  # a host stopped without waiting for its job
        with pytest.raises(asyncio.CancelledError):
            await job

    loop = asyncio.new_event_loop()
    loop.run_until_complete(start())
    loop.close()
    release.set()
    threads.shutdown()
    deadline = time.monotonic() + 5
    while any(t.name.startswith("late_") for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ActivityThreads(0)


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
