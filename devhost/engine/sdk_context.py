"""The SDK's side of an orchestration context the host hands over already parsed.

``devhost.engine.orchestration_context`` makes, per instance, the SDK's ``HistoryEvent``
objects of the events it sends; here are what carries them (``ParsedContext``,
``ParsedTrigger``), the kept event given back as made each episode, and the change to
``DurableOrchestrationContext.from_json`` that takes a ``ParsedContext`` where it takes text.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import azure.functions as func

from devhost.app.loader import FunctionInfo


class ParsedContext:
    """The orchestration trigger's payload as the SDK's ``from_json`` would parse it: the
    history as SDK ``HistoryEvent`` objects (made of each event as its JSON parses, once per
    instance: ``devhost.engine.orchestration_context``) and the other fields as parsed values.

    Every episode re-sends the whole history, and its text, parsed and turned into events again
    each time, was a sixth of the test host's CPU. The SDK's ``DurableOrchestrationContext``
    is still made by its own ``__init__`` from these values; it never changes a
    ``HistoryEvent`` after making it (it only reads them), so one object serves every episode
    in which the event is sent the same way (and an event sent new, then played, is marked
    played: ``mark_played``)."""

    __slots__ = ("fields", "history")

    def __init__(self, history: list[Mapping[str, Any]], fields: dict[str, Any]) -> None:
        self.history = history  # each a one-entry mapping for the constructor below
        self.fields = fields  # everything but the history, as from_json would have parsed it


_PARSED_EVENT = "\x00devhost.parsed_event"


class _KeptEvent:
    """An SDK ``HistoryEvent`` made once, and its attributes as they were made.

    The SDK only reads its events, but it hands them to the user's code (``context.histories``:
    ``is_processed`` is a public setter, and the attributes and the dicts they hold can be
    changed). The real host's worker parses every episode's events anew, so ``fresh`` gives
    the event back with its attributes as made, the plain-JSON dicts and lists they hold
    copied: what one episode's code did to them is not seen by the next."""

    __slots__ = ("event", "made", "mutable")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.event = _SdkHistoryEvent(**fields)
        self.made = dict(self.event.__dict__)
        self.mutable = [k for k, v in self.made.items() if isinstance(v, dict | list)]

    def fresh(self) -> Any:
        attributes = self.event.__dict__
        attributes.clear()
        attributes.update(self.made)
        for key in self.mutable:
            attributes[key] = _copied(self.made[key])
        return self.event


def _copied(value: Any) -> Any:
    """A copy of a parsed JSON value (dicts, lists and immutable scalars): what
    ``copy.deepcopy`` gives, at a quarter of its cost (no memo, no dispatch by type)."""
    if type(value) is dict:
        return {key: _copied(item) for key, item in value.items()}
    if type(value) is list:
        return [_copied(item) for item in value]
    return value


def parsed_history_events(events: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
    """The SDK's events made of these parsed events' fields, ready for a ``ParsedContext``."""
    return [{_PARSED_EVENT: _KeptEvent(fields)} for fields in events]


def mark_played(parsed_event: Mapping[str, Any]) -> None:
    """An event sent new before, now sent as played: ``IsPlayed`` gives the SDK's event only
    its ``_is_played``, so it becomes the event the JSON marked as played would make."""
    parsed_event[_PARSED_EVENT].made["_is_played"] = True


_SdkHistoryEvent: Any = importlib.import_module(
    "azure.durable_functions.models.history.HistoryEvent"
).HistoryEvent
_sdk_context_module = importlib.import_module(
    "azure.durable_functions.models.DurableOrchestrationContext"
)
_SdkContext: Any = _sdk_context_module.DurableOrchestrationContext
# Every function ``Orchestrator.create`` makes runs this code (only its closure differs).
_sdk_handle_code = (
    importlib.import_module("azure.durable_functions.orchestrator")
    .Orchestrator.create(lambda context: None)
    .__code__
)


def _hand_parsed_contexts_to_sdk() -> None:
    """Let the SDK's orchestrator handle take a ``ParsedContext`` where it takes the text.

    ``Orchestrator.create``'s handle passes the trigger's ``body`` to
    ``DurableOrchestrationContext.from_json``, which parses it and calls the class with its
    fields, and ``__init__`` makes a ``HistoryEvent`` of each event's mapping. Given a
    ``ParsedContext``, ``from_json`` calls the class with the parsed fields, and each mapping
    of its history gives the event made before; anything else goes the original way."""
    global _sdk_takes_parsed
    original = _SdkContext.__dict__.get("from_json")
    if not isinstance(original, classmethod) or _sdk_takes_parsed:
        return
    parse_text = original.__func__
    makes_sdk_events = getattr(_sdk_context_module, "HistoryEvent", None) is _SdkHistoryEvent
    if not makes_sdk_events:
        return  # not the SDK this was written for: leave it as it is

    def history_event(**fields: Any) -> Any:
        kept = fields.get(_PARSED_EVENT)
        if kept is None:
            return _SdkHistoryEvent(**fields)
        return kept.fresh()

    def from_json(cls: Any, json_string: Any) -> Any:
        if type(json_string) is ParsedContext:
            return cls(history=json_string.history, **json_string.fields)
        return parse_text(cls, json_string)

    _sdk_context_module.HistoryEvent = history_event  # type: ignore[attr-defined]
    _SdkContext.from_json = classmethod(from_json)
    _sdk_takes_parsed = True


_sdk_takes_parsed = False


_hand_parsed_contexts_to_sdk()


def takes_parsed_context(info: FunctionInfo) -> bool:
    """Whether the orchestrator is the SDK's own handle (what ``DFApp`` and
    ``Orchestrator.create`` register), which reads the trigger's body only to give it to
    ``from_json``: such a function can be given a ``ParsedContext``."""
    return _sdk_takes_parsed and getattr(info.func, "__code__", None) is _sdk_handle_code


class ParsedTrigger(func.OrchestrationContext):
    """The trigger argument whose ``body`` is a ``ParsedContext`` (only for the SDK's handle,
    ``takes_parsed_context``)."""

    def __init__(self, parsed: ParsedContext) -> None:
        self._parsed = parsed

    @property
    def body(self) -> Any:
        return self._parsed
