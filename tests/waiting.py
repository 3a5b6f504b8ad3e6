"""Waiting in tests: bounded by time, never by a count of polls.

A loaded machine (both cores busy, CI beside other work) runs a poll loop ten times slower;
a wait counted in polls then gives up early, a wait with a deadline does not. The limits are
generous on purpose: a test that passes waits only as long as the work takes.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Long enough for a loaded 2-core machine; a wait that passes returns as soon as it can.
DEFAULT_TIMEOUT = 60.0


async def eventually(
    check: Callable[[], Awaitable[T] | T],
    message: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.01,
) -> T:
    """Call ``check`` until it returns something true, and return that.

    Parameters
    ----------
    check
        A function or coroutine function; a false result (``None``, ``False``, empty) means
        "not yet".
    message
        What was awaited, for the failure: "the job to finish".
    timeout
        Seconds before giving up with ``AssertionError``, which shows the last result.
    interval
        Seconds between calls.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if loop.time() > deadline:
            raise AssertionError(f"Waited {timeout:g} s for {message}; last saw {result!r}.")
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T],
    message: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
) -> T:
    """:func:`eventually` for code without an event loop (tests of a host process)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Waited {timeout:g} s for {message}; last saw {result!r}.")
        time.sleep(interval)
