"""Crash-point enumeration of every scenario (see ``enumerate.py``).

The memory store runs in the normal test run. Against Azurite (the HTTP requests are the
writes; a much longer run, the third life crashed after the middle crash point of the
second's recovery only) set ``DURABILITY_AZURITE=1``::

    DURABILITY_AZURITE=1 .venv/bin/python -m pytest tests/durability -k azurite
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest

from devhost.azurite import AzuriteProcess
from devhost.engine.runtime import EngineSettings
from devhost.store.base import Store
from devhost.store.memory import MemoryStore

from .crash import CrashingMemoryStore, CrashPoint, crashing_azure_store
from .enumerate import Enumeration, Run, enumerate_crash_points, enumerate_two_lives
from .scenarios import SCENARIOS, Scenario

TASK_HUB = "crashpoints"


def _report(scenario: Scenario, runs: int, failures: list[Run]) -> str:
    lines = [f"{scenario.name}: {len(failures)} of {runs} crash plans failed"]
    for run in failures[:15]:
        lines.append(f"  crash after writes {run.plan[:-1]}: " + "; ".join(run.problems[:3]))
    return "\n".join(lines)


# Every change written at once (the most crash points), and a group commit as in production
# (several episodes per checkpoint, several messages consumed by one).
SETTINGS = {
    "write_each_change": EngineSettings(checkpoint_interval=0),
    "group_commit": EngineSettings(checkpoint_interval=0.01),
}


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_every_crash_point_on_the_memory_store(
    scenario: Scenario, settings: EngineSettings
) -> None:
    surviving = [MemoryStore(TASK_HUB)]

    async def reset() -> None:
        surviving[0] = MemoryStore(TASK_HUB)

    async def open_store(point: CrashPoint) -> Store:
        return CrashingMemoryStore(surviving[0], point)

    async def inspect() -> Store:
        return surviving[0]

    enumeration = Enumeration(scenario, open_store, inspect, TASK_HUB, settings)
    runs, failures = await enumerate_crash_points(enumeration, reset)

    assert not failures, _report(scenario, runs, failures)


def _memory_enumeration(scenario: Scenario, settings: EngineSettings) -> tuple[Any, Any]:
    surviving = [MemoryStore(TASK_HUB)]

    async def reset() -> None:
        surviving[0] = MemoryStore(TASK_HUB)

    async def open_store(point: CrashPoint) -> Store:
        return CrashingMemoryStore(surviving[0], point)

    async def inspect() -> Store:
        return surviving[0]

    return Enumeration(scenario, open_store, inspect, TASK_HUB, settings), reset


# The scenarios where a life after a crash can be left half done again in its normal running
# (not only in its recovery): entity calls, answered from what an earlier life sent.
TWO_LIVES = [s for s in SCENARIOS if s.name in ("entity", "entity_calls_in_a_row")]


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
@pytest.mark.parametrize("scenario", TWO_LIVES, ids=lambda s: s.name)
async def test_every_pair_of_crash_points_on_the_memory_store(
    scenario: Scenario, settings: EngineSettings
) -> None:
    enumeration, reset = _memory_enumeration(scenario, settings)
    runs, failures = await enumerate_two_lives(enumeration, reset)

    assert not failures, _report(scenario, runs, failures)


@pytest.mark.azurite
@pytest.mark.skipif(
    os.environ.get("DURABILITY_AZURITE") != "1", reason="long: set DURABILITY_AZURITE=1"
)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_every_crash_point_on_azurite(
    scenario: Scenario, azurite: AzuriteProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devhost.store import azure
    from devhost.store.azure import AzureStore

    # A reader killed while it pages through a queue leaves the messages hidden this long;
    # short here so that the next life finds them within the test's patience.
    monkeypatch.setattr(azure, "_READ_VISIBILITY_SECONDS", 2)
    hub = ["x"]

    async def reset() -> None:
        import uuid

        hub[0] = f"Crash{uuid.uuid4().hex[:16]}"

    async def open_store(point: CrashPoint) -> Store:
        return await crashing_azure_store(azurite.connection_string, hub[0], point)

    async def inspect() -> Store:
        store = AzureStore(azurite.connection_string, hub[0])
        await store.open()
        return store

    enumeration = Enumeration(scenario, open_store, inspect, "unused")
    runs, failures = await enumerate_crash_points(enumeration, reset, every_second_recovery=False)
    logging.getLogger(__name__).warning("%s: %d crash plans on Azurite", scenario.name, runs)

    assert not failures, _report(scenario, runs, failures)
