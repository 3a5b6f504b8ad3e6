"""Scheduling: which instances have an episode to run, which timers are due, and rest.

The scheduler owns the ready queue (with each instance's ``inbox`` and ``in_ready_queue``),
the timer heap and the idle signal. It runs nothing itself: the engine's loop takes ready
instances, and ``run_timers`` hands due timers to a callback.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from devhost.engine.clock import Clock
from devhost.engine.instance import Instance, Pending
from devhost.store.base import StoredMessage

FireTimer = Callable[[str, str, int, datetime], None]


class Scheduler:
    """The ready queue, the timer heap and the idle signal of one engine.

    Parameters
    ----------
    clock
        Decides how to wait for the next timer (``Clock.wait_until``).
    busy
        Whether work outside the ready queue is under way (activities, entity operations,
        background writes).
    """

    def __init__(self, clock: Clock, busy: Callable[[], bool]) -> None:
        self._clock = clock
        self._busy = busy
        self._ready: deque[Instance] = deque()
        self._ready_event = asyncio.Event()
        self._timers: list[tuple[datetime, int, str, str, int]] = []
        self._order = itertools.count()
        self.woken = asyncio.Event()  # for the clock (``clock.Timers``)
        self.idle = asyncio.Event()

    # -- the ready queue ------------------------------------------------------------------------

    def deliver(
        self, instance: Instance, event: dict[str, Any], message: StoredMessage | None = None
    ) -> None:
        """Put ``event`` in the instance's inbox and make it ready."""
        instance.inbox.append(Pending(event, message))
        self.mark_ready(instance)

    def mark_ready(self, instance: Instance) -> None:
        if not instance.in_ready_queue:
            instance.in_ready_queue = True
            self._ready.append(instance)
            self._ready_event.set()

    async def wait_ready(self) -> None:
        await self._ready_event.wait()
        self._ready_event.clear()

    def take_ready(self) -> Instance | None:
        """The next ready instance, its inbox to be processed (None when none is ready)."""
        if not self._ready:
            return None
        instance = self._ready.popleft()
        instance.in_ready_queue = False
        return instance

    # -- timers ---------------------------------------------------------------------------------

    def schedule_timer(
        self, fire_at: datetime, instance_id: str, execution_id: str, seq: int
    ) -> None:
        heapq.heappush(self._timers, (fire_at, next(self._order), instance_id, execution_id, seq))
        self.woken.set()

    def wake_timers(self) -> None:
        """Look at the timers again now (the clock was moved)."""
        self.woken.set()

    def next_due(self) -> datetime | None:
        return self._timers[0][0] if self._timers else None

    async def run_timers(self, fire: FireTimer) -> None:
        """Hand each due timer to ``fire(instance_id, execution_id, seq, fire_at)``, forever."""
        while True:
            self.woken.clear()
            now = self._clock.now()
            while self._timers and self._timers[0][0] <= now:
                fire_at, _, instance_id, execution_id, seq = heapq.heappop(self._timers)
                fire(instance_id, execution_id, seq, fire_at)
            await self._clock.wait_for_timer(self)

    # -- rest -----------------------------------------------------------------------------------

    def is_idle(self) -> bool:
        return not self._ready and not self._busy()

    def check_idle(self) -> None:
        if self.is_idle():
            self.idle.set()
