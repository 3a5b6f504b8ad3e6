"""Time sources for the engine: the wall clock, and a virtual clock for tests.

Each clock knows how to wait for the next durable timer (``wait_for_timer``): the wall clock
sleeps; the virtual clock, when it skips time, jumps to the timer's due time as soon as the
engine has nothing else to do, so ``current_utc_datetime`` moves there and a 72-hour deadline
takes milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Timers(Protocol):
    """What a clock sees of the engine's timers while it waits for the next one."""

    woken: asyncio.Event  # set when a timer is added or a test moved the clock
    idle: asyncio.Event  # set whenever the engine comes to rest

    def next_due(self) -> datetime | None: ...

    def is_idle(self) -> bool: ...


class Clock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait_for_timer(self, timers: Timers) -> None:
        """Return when the next timer is due or ``timers.woken`` is set: sleep."""
        due = timers.next_due()
        delay = None if due is None else max(0.0, (due - self.now()).total_seconds())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await timers.woken.wait()


class VirtualClock(Clock):
    """A clock that stands still until the engine (or a test) moves it forward.

    It starts at the real time (or ``start``) and moves by a microsecond on every reading so
    that events keep a strict order, like timestamps on a real machine.
    """

    def __init__(self, start: datetime | None = None, *, auto_advance: bool = True) -> None:
        self._now = start or datetime.now(UTC)
        # auto_advance: jump to the next timer whenever the engine is idle; otherwise timers
        # fire only when a test calls advance().
        self.skips_time = auto_advance

    def now(self) -> datetime:
        self._now += timedelta(microseconds=1)
        return self._now

    def advance_to(self, when: datetime) -> None:
        if when > self._now:
            self._now = when

    def advance(self, delta: timedelta) -> None:
        self.advance_to(self._now + delta)

    async def wait_for_timer(self, timers: Timers) -> None:
        """Skipping time: once the engine rests, jump to the next timer. Otherwise wait until
        ``timers.woken`` is set (a test moved the clock)."""
        if not self.skips_time:
            await timers.woken.wait()
            return
        await timers.idle.wait()
        timers.idle.clear()
        due = timers.next_due()
        if due is not None and timers.is_idle():
            self.advance_to(due)
