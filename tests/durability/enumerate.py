"""Crash-point enumeration: every scenario, crashed after its k-th storage write for every k.

For each k the scenario runs in a first life until the store freezes after write k; a second
life recovers and finishes. Then, for every write j that the second life's recovery makes,
the second life is crashed there instead, and a third life recovers; and for every write i of
that third life's recovery, it too is crashed and a fourth life finishes (for every j, or,
where a run is slow, for the middle j only). The last life runs
until every acknowledged start has ended, checkpoints, stops cleanly, and the store is checked
(``check_store``) together with the scenario's own check.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from devhost.engine.api import StatusOptions
from devhost.engine.clock import VirtualClock
from devhost.engine.history import EventType, OrchestrationStatus
from devhost.engine.instance import parse_stored_json
from devhost.engine.runtime import EngineSettings
from devhost.store.base import TERMINAL_STATUSES, InstanceQuery, Store, StoredHistory

from .app import INDEX
from .crash import CrashPoint, EngineLife, StoreCrashed
from .scenarios import ClientRecord, FinalState, Scenario

# How long one life may take to finish its work (generous: the machine may be busy).
LIFE_DEADLINE = 10.0

StoreFactory = Callable[[CrashPoint], Awaitable[Store]]


class Unfinished(Exception):
    """A life did not finish its work in time (stranded work, or a hang)."""


@dataclass
class LifeResult:
    crashed: bool
    recovery_writes: int  # writes made by start() (recovery), when it finished
    problem: str | None = None  # work left unfinished at the deadline


@dataclass
class Run:
    """One crash plan of one scenario and what it found."""

    plan: tuple[int | None, ...]
    problems: list[str] = field(default_factory=list)
    lives: list[LifeResult] = field(default_factory=list)


class Enumeration:
    """Runs crash plans of one scenario on one kind of store.

    Parameters
    ----------
    scenario
        What the client does and what must hold.
    open_store
        Makes the store of one life, seen through its crash point, on the surviving state.
    inspect_store
        The surviving state without a crash point, for the final checks.
    """

    def __init__(
        self,
        scenario: Scenario,
        open_store: StoreFactory,
        inspect_store: Callable[[], Awaitable[Store]],
        task_hub: str,
        settings: EngineSettings | None = None,
    ) -> None:
        self.settings = settings
        self.scenario = scenario
        self.open_store = open_store
        self.inspect_store = inspect_store
        self.task_hub = task_hub
        self.clock = VirtualClock()

    async def _life(self, limit: int | None, record: ClientRecord) -> LifeResult:
        point = CrashPoint(limit)
        store = await self.open_store(point)
        life = EngineLife(
            INDEX, store, point, self.clock, task_hub=self.task_hub, settings=self.settings
        )
        recovery_writes = -1
        stopped = False
        problem = None
        try:
            await life.engine.start()
            recovery_writes = point.writes
            for step in self.scenario.steps:
                if step.name in record.acknowledged:
                    continue
                await step.call(life.engine, record)
                record.acknowledged.append(step.name)
            await self._finish(life, record)
            if limit is None:
                await life.engine.stop()
                stopped = True
        except StoreCrashed:
            pass
        except Unfinished as error:
            problem = str(error)
        finally:
            crashed = point.crashed
            if not stopped:
                await life.abandon()
        return LifeResult(crashed, recovery_writes, problem)

    async def _finish(self, life: EngineLife, record: ClientRecord) -> None:
        """Wait until every acknowledged start ended and the engine rests."""
        engine = life.engine
        deadline = time.monotonic() + LIFE_DEADLINE
        while True:
            if life.point.crashed:
                raise StoreCrashed("crashed while finishing")
            statuses = [
                await engine.get_status(i, StatusOptions()) for i in record.started.values()
            ]
            ended = all(s is not None and s["runtimeStatus"] in TERMINAL_STATUSES for s in statuses)
            if ended and engine.is_idle():
                await engine.checkpoint()
                if engine.is_idle():
                    break
            if time.monotonic() > deadline:
                shown = [(s or {}).get("runtimeStatus") for s in statuses]
                raise Unfinished(f"not finished after {LIFE_DEADLINE} s: {shown}")
            await asyncio.sleep(0.001)

    async def run(self, plan: tuple[int | None, ...]) -> Run:
        """Run the lives of ``plan`` (crash limits, the last one None) and check the end."""
        record = ClientRecord()
        run = Run(plan)
        for limit in plan:
            life = await self._life(limit, record)
            run.lives.append(life)
            if life.problem is not None:
                run.problems.append(f"life {len(run.lives)}: {life.problem}")
                return run
        run.problems = await self._check(record)
        return run

    async def _check(self, record: ClientRecord) -> list[str]:
        store = await self.inspect_store()
        try:
            problems = await check_store(store)
            rows, _ = await store.query_instances(InstanceQuery(), 1000, None)
            statuses: dict[str, dict[str, Any]] = {}
            histories: dict[str, StoredHistory] = {}
            for row in rows:
                if row.name.startswith("@"):
                    continue
                history = await store.read_history(row.instance_id)
                if history is not None:
                    histories[row.instance_id] = history
                statuses[row.instance_id] = {
                    "runtimeStatus": row.runtime_status,
                    "output": parse_stored_json(row.output),
                }
            for step, instance_id in record.started.items():
                if instance_id not in statuses:
                    problems.append(f"acknowledged start {step} ({instance_id}) has no row")
            entities = {}
            for key in self.scenario.entity_keys:
                row = next((r for r in rows if r.instance_id == f"@tally@{key}"), None)
                saved = json.loads(row.input or "{}") if row is not None else {}
                entities[key] = (bool(saved.get("exists")), saved.get("state"))
            problems += self.scenario.check(FinalState(record, statuses, histories, entities))
        finally:
            await store.close()
        return problems


async def check_store(store: Store) -> list[str]:
    """The invariants every store must satisfy once the host has finished and stopped."""
    problems: list[str] = []
    rows, _ = await store.query_instances(InstanceQuery(), 1000, None)
    watermarks: dict[str, str] = {}
    terminal: set[str] = set()
    for row in rows:
        if row.name.startswith("@"):
            continue
        history = await store.read_history(row.instance_id)
        events = history.events if history is not None else []
        watermarks[row.instance_id] = history.inbox_watermark if history is not None else ""
        if row.runtime_status in TERMINAL_STATUSES:
            terminal.add(row.instance_id)
        else:
            problems.append(f"{row.instance_id} stranded: {row.runtime_status} with all done")
        started = [e for e in events if e["EventType"] == EventType.ExecutionStarted]
        if len(started) > 1:
            problems.append(f"{row.instance_id}: {len(started)} ExecutionStarted in one execution")
        if history is None:
            problems.append(f"{row.instance_id}: a {row.runtime_status} row with no history")
            continue
        problems += _row_against_history(row, history)
    for message in await store.read_messages():
        target = message.instance_id
        if target.startswith("@") or target in terminal:
            continue  # requests are deduplicated by ID; events for a finished instance drop
        if message.msg_id > watermarks.get(target, ""):
            problems.append(f"message {message.body.get('kind')} for {target} never applied")
    return problems


def _row_against_history(row: Any, history: StoredHistory) -> list[str]:
    where = row.instance_id
    if history.execution_id != row.execution_id:
        return [f"{where}: row execution {row.execution_id} != history {history.execution_id}"]
    started = next(e for e in history.events if e["EventType"] == EventType.ExecutionStarted)
    ended = [e for e in history.events if e["EventType"] == EventType.ExecutionCompleted]
    problems = []
    if started["Name"] != row.name or started.get("Input") != row.input:
        problems.append(f"{where}: row name/input differ from ExecutionStarted")
    if ended:
        status = OrchestrationStatus(ended[-1]["OrchestrationStatus"]).name
        if status != row.runtime_status or ended[-1].get("Result") != row.output:
            problems.append(
                f"{where}: row says {row.runtime_status} {row.output!r}, history says "
                f"{status} {ended[-1].get('Result')!r}"
            )
    elif row.runtime_status in TERMINAL_STATUSES:
        problems.append(f"{where}: row says {row.runtime_status}, the history has not ended")
    return problems


async def enumerate_crash_points(
    enumeration: Enumeration,
    reset: Callable[[], Awaitable[None]],
    *,
    every_second_recovery: bool = True,
    max_k: int = 500,
) -> tuple[int, list[Run]]:
    """Every crash plan of a scenario; returns the number of runs and the failed ones.

    ``every_second_recovery``: crash the third life at each write of its recovery after
    every crash point j of the second life's recovery; otherwise after the middle one only.
    """
    failures: list[Run] = []
    runs = 0

    async def attempt(plan: tuple[int | None, ...]) -> Run:
        nonlocal runs
        await reset()
        run = await enumeration.run(plan)
        runs += 1
        if run.problems:
            failures.append(run)
        return run

    for k in range(max_k):
        run = await attempt((k, None))
        if not run.lives[0].crashed:
            return runs, failures  # k passed the last write: every point is covered
        recovery_writes = max(0, run.lives[1].recovery_writes)
        for j in range(recovery_writes):
            second = await attempt((k, j, None))
            if not every_second_recovery and j != recovery_writes // 2:
                continue
            for i in range(max(0, second.lives[2].recovery_writes)):
                await attempt((k, j, i, None))
    raise AssertionError(f"{enumeration.scenario.name}: more than {max_k} writes")


async def enumerate_two_lives(
    enumeration: Enumeration,
    reset: Callable[[], Awaitable[None]],
    *,
    max_k: int = 500,
) -> tuple[int, list[Run]]:
    """Every pair of crash points (k, m): the first life crashed after its write k, the
    second after its write m, during its recovery or after it (the plans above crash the
    second life during its recovery only), and a third life finishes.

    What a crash leaves for the next life to finish can be left half done again by that
    life: an entity's answer to a request whose call the first crash took back is recorded
    by the second life, which then crashes before the call's second answer is stored.
    """
    failures: list[Run] = []
    runs = 0
    for k in range(max_k):
        for m in range(max_k):
            await reset()
            run = await enumeration.run((k, m, None))
            runs += 1
            if run.problems:
                failures.append(run)
            if not run.lives[0].crashed:
                return runs, failures
            if len(run.lives) < 2 or not run.lives[1].crashed:
                break
    raise AssertionError(f"{enumeration.scenario.name}: more than {max_k} writes")
