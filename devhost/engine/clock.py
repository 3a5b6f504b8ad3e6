"""Time sources for the engine: the wall clock, and a virtual clock for tests.

With the virtual clock, durable timers fire as soon as the engine has nothing else to do, and
``current_utc_datetime`` moves to the timer's due time, so a 72-hour deadline takes
milliseconds. The engine asks ``skips_time`` to decide between sleeping and advancing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """The wall clock."""

    skips_time = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def advance_to(self, when: datetime) -> None:  # pragma: no cover - only virtual clocks move
        raise RuntimeError("the wall clock cannot be advanced")


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
