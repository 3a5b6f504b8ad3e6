"""What a client does in each crash scenario, and what must hold at the end.

A scenario is a list of client calls (``Step``) and a check of the final state. A call that
returned is *acknowledged* (the client got its 202). A call cut short by the crash is retried
by the client in the next life, as a client that got no answer does; a retried start of a
caller's instance ID that finds the instance is acknowledged too (the client then knows it
exists).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from devhost.engine.api import Backend, InstanceAlreadyExists, InstanceGone
from devhost.engine.history import EventType
from devhost.store.base import StoredHistory

from .crash import StoreCrashed


@dataclass
class ClientRecord:
    """What the client was told, over all lives."""

    acknowledged: list[str] = field(default_factory=list)  # step names
    started: dict[str, str] = field(default_factory=dict)  # step name -> instance ID
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    name: str
    call: Callable[[Backend, ClientRecord], Awaitable[None]]


@dataclass
class FinalState:
    """What the store holds once the last life has finished everything and stopped."""

    record: ClientRecord
    statuses: dict[str, dict[str, Any]]  # instance ID -> status object (orchestrations)
    histories: dict[str, StoredHistory]
    entities: dict[str, tuple[bool, str | None]]  # entity key -> (exists, state)


@dataclass
class Scenario:
    name: str
    steps: list[Step]
    check: Callable[[FinalState], list[str]]
    entity_keys: list[str] = field(default_factory=list)


def _input(value: Any) -> str:
    return json.dumps(json.dumps(value))


def start(step: str, name: str, value: Any, instance_id: str | None = None) -> Step:
    async def call(client: Backend, record: ClientRecord) -> None:
        try:
            record.started[step] = await client.start_new(name, instance_id, _input(value))
        except InstanceAlreadyExists:
            assert instance_id is not None
            record.started[step] = instance_id  # an earlier attempt landed before the crash

    return Step(step, call)


def settle(step: str) -> Step:
    """Wait until the host rests (each event then gets an episode and a checkpoint of its own)."""

    async def call(client: Backend, record: ClientRecord) -> None:
        deadline = asyncio.get_running_loop().time() + 60
        while not getattr(client, "is_idle", lambda: True)():
            assert asyncio.get_running_loop().time() < deadline, "the host never rested"
            await asyncio.sleep(0.001)

    return Step(step, call)


def raise_event(step: str, instance_id: str, event: str, value: Any) -> Step:
    async def call(client: Backend, record: ClientRecord) -> None:
        try:
            await client.raise_event(instance_id, event, json.dumps(value))
        except InstanceGone:
            record.notes[f"{step}:gone"] = True  # finished before the retry: not delivered

    return Step(step, call)


def terminate(step: str, instance_id: str, reason: str) -> Step:
    async def call(client: Backend, record: ClientRecord) -> None:
        try:
            await client.terminate(instance_id, reason)
        except InstanceGone:
            record.notes[f"{step}:gone"] = True

    return Step(step, call)


def two_starts(step: str, instance_id: str) -> Step:
    """Two starts of one ID at once, with different inputs: at most one may be acknowledged."""

    async def call(client: Backend, record: ClientRecord) -> None:
        outcomes = await asyncio.gather(
            client.start_new("echo_input", instance_id, _input("first")),
            client.start_new("echo_input", instance_id, _input("second")),
            return_exceptions=True,
        )
        if any(isinstance(o, StoreCrashed) for o in outcomes) and not any(
            isinstance(o, str) for o in outcomes
        ):
            raise StoreCrashed("neither start was acknowledged")
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(
                outcome, InstanceAlreadyExists | StoreCrashed
            ):
                raise outcome
        winners = [i for i, o in enumerate(outcomes) if isinstance(o, str)]
        record.notes["winners"] = record.notes.get("winners", []) + [
            ["first", "second"][i] for i in winners
        ]
        record.started[step] = instance_id

    return Step(step, call)


# -- checks -------------------------------------------------------------------------------------


def _completed_with(final: FinalState, step: str, expected: Any) -> list[str]:
    instance_id = final.record.started.get(step)
    if instance_id is None:
        return [f"{step}: never acknowledged"]
    status = final.statuses.get(instance_id)
    if status is None:
        return [f"{step}: acknowledged instance {instance_id} is gone"]
    if status["runtimeStatus"] != "Completed" or status["output"] != expected:
        return [
            f"{step}: {instance_id} ended {status['runtimeStatus']} with {status['output']!r}, "
            f"expected Completed with {expected!r}"
        ]
    return []


def _check_chain(final: FinalState) -> list[str]:
    return _completed_with(final, "start", ["A", "B", "C"])


def _check_fan_out(final: FinalState) -> list[str]:
    return _completed_with(final, "start", 0 + 1 + 4 + 9)


def _check_parent(final: FinalState) -> list[str]:
    problems = _completed_with(final, "start", [["A", "B"], 0 + 1 + 4])
    children = [i for i in final.statuses if i != "par"]
    if len(children) != 2:
        problems.append(f"sub-orchestrations: expected 2 children, found {children}")
    return problems


def _check_collect(final: FinalState) -> list[str]:
    return _completed_with(final, "start", [1, 2, 3])


def _check_entity(final: FinalState) -> list[str]:
    problems = _completed_with(final, "start", 15)
    exists, state = final.entities.get("k", (False, None))
    if not exists or state is None or json.loads(state) != 15:
        problems.append(f"entity Tally@k: expected state 15 (each operation once), got {state}")
    return problems


def _check_entity_calls(final: FinalState) -> list[str]:
    problems = _completed_with(final, "start", [5, 12])
    exists, state = final.entities.get("k2", (False, None))
    if not exists or state is None or json.loads(state) != 12:
        problems.append(f"entity Tally@k2: expected state 12 (each operation once), got {state}")
    return problems


def _check_race(final: FinalState) -> list[str]:
    status = final.statuses.get("race")
    history = final.histories.get("race")
    if status is None or history is None:
        return ["race: the instance or its history is gone"]
    kinds = [
        EventType(e["EventType"])
        for e in history.events
        if e["EventType"] in (EventType.EventRaised, EventType.TimerFired)
    ]
    expected = {"event": "now"} if kinds[:1] == [EventType.EventRaised] else {"event": None}
    if status["runtimeStatus"] != "Completed" or status["output"] != expected:
        return [f"race: ended {status['runtimeStatus']} {status['output']!r}, history {kinds}"]
    return []


def _check_terminate(final: FinalState) -> list[str]:
    status = final.statuses.get("term")
    if status is None or status["runtimeStatus"] != "Terminated" or status["output"] != "stop":
        return [f"terminate: expected Terminated with 'stop', got {status}"]
    return []


def _check_two_starts(final: FinalState) -> list[str]:
    winners = final.record.notes.get("winners", [])
    if len(winners) != 1:
        return [f"two starts: {len(winners)} acknowledged ({winners}); exactly one may win"]
    return _completed_with(final, "both", winners[0])


SCENARIOS = [
    Scenario("chain", [start("start", "chain", ["a", "b", "c"])], _check_chain),
    Scenario("fan_out", [start("start", "fan_out", 4, "fan")], _check_fan_out),
    Scenario("sub_orchestration", [start("start", "parent", None, "par")], _check_parent),
    Scenario(
        "continue_as_new",
        [
            start("start", "collect", None, "col"),
            raise_event("add1", "col", "Add", 1),
            raise_event("add2", "col", "Add", 2),
            raise_event("add3", "col", "Add", 3),
        ],
        _check_collect,
    ),
    Scenario(
        "continue_as_new_step_by_step",
        [
            start("start", "collect", None, "col"),
            settle("rest0"),
            raise_event("add1", "col", "Add", 1),
            settle("rest1"),
            raise_event("add2", "col", "Add", 2),
            settle("rest2"),
            raise_event("add3", "col", "Add", 3),
        ],
        _check_collect,
    ),
    Scenario("entity", [start("start", "count_with_entity", "k", "ent")], _check_entity, ["k"]),
    Scenario(
        "entity_calls_in_a_row",
        [start("start", "count_twice", "k2", "ent2")],
        _check_entity_calls,
        ["k2"],
    ),
    Scenario(
        "event_racing_timer",
        [start("start", "race", None, "race"), raise_event("go", "race", "Go", "now")],
        _check_race,
    ),
    Scenario(
        "terminate",
        [start("start", "wait_forever", None, "term"), terminate("stop", "term", "stop")],
        _check_terminate,
    ),
    Scenario("two_starts", [two_starts("both", "twin")], _check_two_starts),
]
