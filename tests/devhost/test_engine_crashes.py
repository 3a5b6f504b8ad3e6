"""Crashes at the instants that used to lose or strand work, one test each.

Each test kills a first host at a chosen point (its store accepts no write after it, and its
memory is lost, ``tests.durability.crash``) and starts a second host on what was stored. The
crash-point enumeration (``tests/durability``) tries every point; these pin the ones that
once went wrong.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from devhost.engine.history import EventType
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost
from tests.devhost.apps import waiting
from tests.durability.crash import life_that_crashes

TASK_HUB = "crashes"


async def until(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.001)


def _started(history: list[dict[str, Any]]) -> int:
    return sum(e["EventType"] == EventType.ExecutionStarted for e in history)


async def test_an_event_held_while_suspended_survives_a_crash() -> None:
    store = MemoryStore(TASK_HUB)
    async with life_that_crashes(waiting.INDEX, store) as first:
        engine = first.engine
        await engine.start_new("wait_for_approve", "paused", None)
        await until(lambda: engine.instances["paused"].status == "Running", "running")
        # One episode takes both: the suspend is recorded, the event is held.
        await engine.suspend("paused", "hold on")
        await engine.raise_event("paused", "Approve", json.dumps("later"))
        await until(lambda: engine.instances["paused"].status == "Suspended", "suspended")
        await engine.checkpoint()  # the suspended instance, its held event not in it

    async with DurableTestHost(index=waiting.INDEX, store=store, task_hub=TASK_HUB) as second:
        await second.engine.resume("paused", "go on")
        status = await second.wait("paused")

    assert status["runtimeStatus"] == "Completed" and status["output"] == "later"
