"""The context the SDK is handed already parsed (its history events kept per instance) is the
context it would have parsed from the payload's text, and the episode replays the same:
every episode of each case below is also run from a fresh parse of the whole text, and both
the SDK's context and the reply are compared."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from devhost.app.loader import FunctionIndex, FunctionInfo
from devhost.engine import episode
from devhost.engine.history import EventType
from devhost.engine.instance import Instance
from devhost.engine.orchestration_context import _as_parsed, _marked, parsed_context
from devhost.engine.sdk_context import ParsedContext
from devhost.testing import DurableTestHost
from tests.devhost.apps import counters, failures, generations, rewinding, sequences, waiting
from tests.devhost.test_engine_context_json import episodes, finished_instance, whole_dumps

SdkContext: Any = pytest.importorskip(
    "azure.durable_functions.models.DurableOrchestrationContext"
).DurableOrchestrationContext


def sdk_state(context: Any) -> dict[str, Any]:
    """Everything the SDK's context holds, its events and function context field by field."""
    state = dict(vars(context))
    state["_histories"] = [(type(e), vars(e)) for e in context.histories]
    state["decision_started_event"] = vars(context.decision_started_event)
    state["_function_context"] = vars(context._function_context)
    return state


class Compared:
    def __init__(self) -> None:
        self.episodes = 0
        self.texts: list[str] = []


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> Iterator[Compared]:
    seen = Compared()
    real_context = episode.trigger_context
    real_invoke = episode.invoke_orchestrator

    def trigger_context(
        info: FunctionInfo, instance: Instance, history: list[dict[str, Any]]
    ) -> Any:
        context = real_context(info, instance, history)
        assert type(context) is ParsedContext  # every orchestrator here is the SDK's handle
        seen.texts.append(whole_dumps(instance, history))  # what a fresh parse starts from
        return context

    def invoke_orchestrator(info: FunctionInfo, context: Any) -> Any:
        text = seen.texts.pop()
        assert sdk_state(SdkContext.from_json(context)) == sdk_state(SdkContext.from_json(text))
        reply = real_invoke(info, context)
        assert reply == real_invoke(info, text)
        seen.episodes += 1
        return reply

    monkeypatch.setattr(episode, "trigger_context", trigger_context)
    monkeypatch.setattr(episode, "invoke_orchestrator", invoke_orchestrator)
    yield seen
    assert not seen.texts


async def run(index: FunctionIndex, name: str, input: Any = None) -> dict[str, Any]:
    async with DurableTestHost(index=index) as host:
        return await host.run(name, input)


@pytest.mark.parametrize(
    ("name", "output"),
    [
        ("hello_sequence", ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]),
        ("fan_out_fan_in", None),
        ("parent_default_id", None),
        ("parent_of_failing_child", None),
    ],
)
async def test_sequences_fan_outs_and_sub_orchestrations(
    compared: Compared, name: str, output: Any
) -> None:
    status = await run(sequences.INDEX, name, 3)

    assert status["runtimeStatus"] in ("Completed", "Failed")
    if output is not None:
        assert status["output"] == output
    assert compared.episodes >= 2


async def test_entities(compared: Compared) -> None:
    for name in ("add_and_read", "signal_then_read", "call_and_finish"):
        status = await run(counters.INDEX, name, "k" + name[:4])
        assert status["runtimeStatus"] == "Completed", status
    assert compared.episodes >= 6


async def test_continue_as_new(compared: Compared) -> None:
    async with DurableTestHost(index=generations.INDEX) as host:
        instance_id = await host.start("widen")
        await host.idle()
        await host.raise_event(instance_id, "Widen", None)
        status = await host.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == sum(n + 1 for n in range(generations.WIDTH))
    assert compared.episodes >= 3


async def test_rewind(compared: Compared) -> None:
    rewinding.broken.add("b")
    try:
        async with DurableTestHost(index=rewinding.INDEX) as host:
            instance_id = await host.start("chain")
            assert (await host.wait(instance_id))["runtimeStatus"] == "Failed"
            rewinding.broken.clear()
            await host.engine.rewind(instance_id, "fixed")
            status = await host.wait(instance_id)
    finally:
        rewinding.broken.clear()
        rewinding.calls.clear()

    assert status["output"] == ["A", "B", "C"]
    assert compared.episodes >= 6


async def test_suspend_resume_timers_and_events(compared: Compared) -> None:
    async with DurableTestHost(index=waiting.INDEX) as host:
        held = await host.start("wait_for_approve")
        timed = await host.start("timer_then_event")
        await host.idle()
        await host.engine.suspend(held, "pause")
        await host.raise_event(held, "Approve", "while suspended", as_client=False)
        await host.idle()
        await host.engine.resume(held, "go on")
        await host.elapse(timedelta(hours=2))
        await host.raise_event(timed, "Go", {"n": [1, 2.5, "x"]}, as_client=False)

        assert (await host.wait(held))["output"] == "while suspended"
        assert (await host.wait(timed))["output"] == {"n": [1, 2.5, "x"]}
    assert compared.episodes >= 5


async def test_a_non_deterministic_orchestrator_is_still_reported(compared: Compared) -> None:
    try:
        async with DurableTestHost(index=failures.INDEX) as host:
            instance_id = await host.start("changes_its_mind")
            await host.idle()
            failures.use_renamed_step = True
            await host.raise_event(instance_id, "Continue", "go")
            status = await host.wait(instance_id)
    finally:
        failures.use_renamed_step = False

    assert status["runtimeStatus"] == "Failed"
    assert "Non-Deterministic workflow detected" in status["output"]
    assert compared.episodes >= 2


async def test_every_episode_in_and_out_of_order() -> None:
    instance = await finished_instance("hello_sequence")
    runs = episodes(instance.history)

    for history in [*runs, *reversed(runs)]:  # each reuses what the one before made, if it can
        context = SdkContext.from_json(parsed_context(instance, history))
        assert sdk_state(context) == sdk_state(SdkContext.from_json(whole_dumps(instance, history)))


async def test_a_replaced_event_is_parsed_as_it_is_now() -> None:
    instance = await finished_instance("hello_sequence")
    history = list(episodes(instance.history)[-1])
    parsed_context(instance, history)
    completed = next(i for i, e in enumerate(history) if e["EventType"] == EventType.TaskCompleted)
    history[completed] = {**history[completed], "Result": '"rewritten"'}

    context = SdkContext.from_json(parsed_context(instance, history))

    assert sdk_state(context) == sdk_state(SdkContext.from_json(whole_dumps(instance, history)))
    assert context.histories[completed].Result == '"rewritten"'


def test_an_orchestrator_that_is_not_the_sdk_handle_gets_the_text() -> None:
    """A function the app wraps itself may read the body: it gets the text, as from the
    worker."""
    info = sequences.INDEX.orchestrator("hello_sequence")
    assert info is not None
    bodies: list[Any] = []

    def wrapped(**kwargs: Any) -> Any:
        bodies.append(kwargs[info.trigger_param].body)
        return info.func(**kwargs)

    own = FunctionInfo(**{**vars(info), "func": wrapped})
    instance = Instance("i", "hello_sequence", "e", "Running", None, None)  # type: ignore[arg-type]
    history = [
        {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": "2026-12-03T00:00:00Z"},
        {
            "EventType": 0,
            "EventId": -1,
            "IsPlayed": False,
            "Timestamp": "2026-12-03T00:00:00Z",
            "OrchestrationInstance": {"InstanceId": "i", "ExecutionId": "e"},
            "ParentInstance": None,
            "Name": "hello_sequence",
            "Version": "",
            "Input": None,
        },
    ]
    reply, _ = episode.invoke_orchestrator(own, episode.trigger_context(own, instance, history))

    assert isinstance(bodies[0], str)
    assert json.loads(bodies[0]) == json.loads(whole_dumps(instance, history))
    assert reply is not None and reply["actions"]


class Level(enum.IntEnum):
    HIGH = 2


class Label(str):
    pass


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"Result": '"text"', "Input": None, "Generation": 3, "Ratio": 0.1, "Flag": True},
        {"OrchestrationInstance": {"InstanceId": "i", "ExecutionId": "e"}, "Tags": None},
        {"Nested": [1, [2.5, {"a": (3, "x")}], (None, False)], "Big": 10**40},
        {"Odd": float("inf"), "Negative": -0.0, "Text": 'é \u2028 \ud800 "\\'},
        {"Status": Level.HIGH},  # an int subclass: through JSON, as an int
        {"Name": Label("sub")},  # a str subclass: through JSON, as a str
        {"Keys": {1: "one", None: "none"}},  # keys that are not text: through JSON
        {"IsPlayed": 1},  # equal to True: kept as it is, as _marked keeps it
        {"IsPlayed": 0},
    ],
)
@pytest.mark.parametrize("played", [False, True])
def test_an_event_copied_is_the_event_as_its_json_parses(
    extra: dict[str, Any], played: bool
) -> None:
    event = {"EventType": 5, "EventId": -1, "IsPlayed": False, "Timestamp": "2026-12-03T00:00Z"}
    event.update(extra)

    copied = _as_parsed(event, played)
    parsed = json.loads(json.dumps(_marked(event, played)))

    assert json.dumps(copied) == json.dumps(parsed)  # values, order and types as JSON gives them
    assert [type(v) for v in copied.values()] == [type(v) for v in parsed.values()]
    assert copied is not event
    for key, value in event.items():
        if isinstance(value, dict | list):
            assert copied[key] is not value  # nothing shared with the host's history


def test_an_event_that_json_cannot_encode_fails_as_before() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    for bad in (cyclic, object()):
        event = {"EventType": 5, "EventId": -1, "IsPlayed": False, "Odd": bad}
        with pytest.raises((ValueError, TypeError)) as copied:
            _as_parsed(event, True)
        with pytest.raises((ValueError, TypeError)) as dumped:
            json.dumps(event)
        assert type(copied.value) is type(dumped.value)
