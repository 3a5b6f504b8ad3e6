"""The orchestration trigger's payload for each episode (protocol notes §2.1, §2.4).

Every episode sends the whole history, its past events marked as played, so making the
payload grew with the square of the history. A played event stays played: what was made of
the events the episode before sent is kept on the instance while the events it was made from
are still the ones at their places (a rewind or a new generation replaces events, and what
follows them is made anew), and only the events since are made. Kept is either

- the text of the played events (``context_json``): the payload as the Python worker gets it,
  the same text as one ``json.dumps`` of it all; or
- the SDK's ``HistoryEvent`` objects of every event sent (``parsed_context``), for an
  orchestrator that is the SDK's own handle, which would only parse the text
  (``devhost.engine.sdk_context.ParsedContext``): each made once of the event as its JSON parses,
  and marked played when it becomes so.
"""

from __future__ import annotations

import json
from typing import Any, cast

from devhost.app.loader import FunctionInfo
from devhost.engine.history import EventType
from devhost.engine.instance import Instance
from devhost.engine.sdk_context import (
    ParsedContext,
    mark_played,
    parsed_history_events,
    takes_parsed_context,
)

# What the extension sends besides the history and the instance's own fields, in its order.
_SETTINGS = {
    "upperSchemaVersion": 1,
    "upperSchemaVersionNew": 2,
    "longRunningTimerIntervalDuration": "3.00:00:00",
    "maximumShortTimerDuration": "6.00:00:00",
    "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
}


def trigger_context(
    info: FunctionInfo, instance: Instance, history: list[dict[str, Any]]
) -> str | ParsedContext:
    """The payload for ``invoke_orchestrator``: parsed where the function takes it so."""
    if takes_parsed_context(info):
        return parsed_context(instance, history)
    return context_json(instance, history)


def context_json(instance: Instance, history: list[dict[str, Any]]) -> str:
    """The payload as the text the Python worker gets (``instance.played_json`` kept)."""
    last_started = _last_started(history)
    known, played_text = instance.played_json
    reused = _reusable(known, history, last_started)
    texts = [played_text] if reused and played_text else []
    if reused < last_started:
        texts.append(_events_json(history[reused:last_started], played=True))
    instance.played_json = (history[:last_started], ", ".join(texts))
    if last_started < len(history):
        texts.append(_events_json(history[last_started:], played=False))
    rest = json.dumps(_fields(instance, history, last_started))
    return '{"history": [' + ", ".join(texts) + "], " + rest[1:]


def replayed_context_json(instance: Instance, history: list[dict[str, Any]]) -> str:
    """The payload of a re-run on the stored history alone (recovery's ``open_work``): every
    event played, as the real host's next episode sends the stored ones, so that code the app
    runs only when not replaying (``if not context.is_replaying``: a notification) is not run
    again for an episode that ran before the crash. Nothing is kept on the instance."""
    fields = _fields(instance, history, len(history))
    return json.dumps({"history": [_marked(e, True) for e in history], **fields})


def parsed_context(instance: Instance, history: list[dict[str, Any]]) -> ParsedContext:
    """The payload as the SDK's ``from_json`` would parse it (``instance.sent_events`` kept):
    each event made once as its JSON parses (``_as_parsed``), and marked played when it
    becomes so."""
    last_started = _last_started(history)
    known, kept, played_before = instance.sent_events
    reused = len(known)
    if (
        played_before > last_started
        or reused > len(history)
        or not all(a is b for a, b in zip(known, history, strict=False))
    ):
        reused = played_before = 0
    events = kept[:reused]
    for position in range(played_before, min(reused, last_started)):
        mark_played(events[position])  # sent new by the episode before, played now
    if reused < last_started:
        events += parsed_history_events(
            [_as_parsed(e, played=True) for e in history[reused:last_started]]
        )
    if max(reused, last_started) < len(history):
        events += parsed_history_events(
            [_as_parsed(e, played=False) for e in history[max(reused, last_started) :]]
        )
    instance.sent_events = (history[:], events, last_started)
    return ParsedContext(list(events), _fields(instance, history, last_started))


def _last_started(history: list[dict[str, Any]]) -> int:
    """Where the last episode starts (its OrchestratorStarted): the events before it are
    played. It is near the end."""
    for position in range(len(history) - 1, -1, -1):
        if history[position]["EventType"] == EventType.OrchestratorStarted:
            return position
    return 0


def _reusable(known: list[dict[str, Any]], history: list[dict[str, Any]], last_started: int) -> int:
    """How many of the events made before are still played and at their places."""
    if len(known) > last_started or not all(a is b for a, b in zip(known, history, strict=False)):
        return 0
    return len(known)


def _events_json(events: list[dict[str, Any]], played: bool) -> str:
    """The events' text as ``json.dumps`` writes them in a list (joined by ", "), without
    the brackets."""
    return json.dumps([_marked(e, played) for e in events])[1:-1]


def _marked(event: dict[str, Any], played: bool) -> dict[str, Any]:
    return event if event.get("IsPlayed") == played else {**event, "IsPlayed": played}


def _as_parsed(event: dict[str, Any], played: bool) -> dict[str, Any]:
    """The event, marked, as ``json.loads(json.dumps(...))`` gives it: copied directly when
    it holds only text, numbers, booleans, None, lists and dicts with text keys, which the
    round trip gives back as they are (a tuple as a list), and through JSON otherwise (an
    ``int`` or ``str`` subclass, a key that is not text, a cycle: its error as before).
    Copying was about a sixth of what the round trip cost."""
    try:
        copied = _plain_copy(event)
    except (_NotPlainJson, RecursionError):
        return cast(dict[str, Any], json.loads(json.dumps(_marked(event, played))))
    if event.get("IsPlayed") != played:
        copied["IsPlayed"] = played
    return copied


class _NotPlainJson(Exception):
    pass


_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        copied = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlainJson
            copied[key] = item if type(item) in _PLAIN_SCALARS else _plain_copy(item)
        return copied
    if kind is list or kind is tuple:
        return [item if type(item) in _PLAIN_SCALARS else _plain_copy(item) for item in value]
    if kind in _PLAIN_SCALARS:
        return value
    raise _NotPlainJson


def _fields(instance: Instance, history: list[dict[str, Any]], last_started: int) -> dict[str, Any]:
    """Everything but the history, as the payload's JSON gives it."""
    stored_input = history[1].get("Input") if len(history) > 1 else None
    fields: dict[str, Any] = {
        "input": json.loads(stored_input) if stored_input is not None else None,
        "instanceId": instance.instance_id,
        "isReplaying": last_started > 1,
        "parentInstanceId": instance.parent_instance_id,
    }
    fields.update(_SETTINGS)
    return fields
