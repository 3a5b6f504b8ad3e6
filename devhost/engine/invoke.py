"""Calling the app's durable functions the way the Python worker does (protocol notes §1.2-1.3).

Payloads go through the converters of ``azure.functions`` itself (``df_loads``/``df_dumps``,
``OrchestrationContext``), so encodings match the real worker byte for byte.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
import os
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import azure.functions as func
from azure.functions import _durable_functions as durable_codec

from devhost.app.loader import FunctionInfo
from devhost.engine.activity_threads import ActivityThreads

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"


_HOST_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,7}))?Z", re.ASCII
)


def _memoise_sdk_timestamp_parsing() -> None:
    """Parse each history timestamp once per process instead of once per episode.

    The SDK builds every history event with ``dateutil.parser.parse`` (about 0.2-0.6 ms each),
    and every episode re-sends the whole history, so parsing dominated replay time. Caching
    the results changes nothing the app can observe: the same string always gives an equal,
    immutable datetime. (tests/devhost/test_invoke_timestamps.py compares with dateutil.)
    """
    # The package re-exports a class of the same name, so import the module by its path.
    history_module = importlib.import_module("azure.durable_functions.models.history.HistoryEvent")
    original = history_module.dt_parse
    if getattr(original, "_devhost_cached", False):
        return

    # dateutil gives "...Z" the local zone (tzlocal) when that zone is named UTC, else tzutc,
    # and may decide by date where the local zone has daylight saving time. Without DST its
    # choice is the same for every date, so it is learnt once.
    zone = original("2000-01-01T00:00:00Z").tzinfo if time.daylight == 0 else None

    def parse_once(timestr: Any, *args: Any, **kwargs: Any) -> Any:
        # The host's own timestamps (dotnet_time) are read directly, as dateutil's general
        # parser (about 0.2 ms) reads them: the fraction truncated to microseconds, the zone
        # as above. Anything else goes to dateutil itself.
        match = (
            _HOST_TIMESTAMP.fullmatch(timestr)
            if type(timestr) is str and not args and not kwargs
            else None
        )
        if match is None or zone is None:
            return original(timestr, *args, **kwargs)
        *fields, fraction = match.groups()
        year, month, day, hour, minute, second = map(int, fields)
        micro = int((fraction or "").ljust(6, "0")[:6])
        try:
            return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
        except ValueError:
            return original(timestr)  # an impossible date: dateutil's own error

    # The cache is the parser the SDK calls (one call per event per episode, so no wrapper
    # around it): the SDK passes one text, and any hashable arguments give the same datetime
    # each time; an exception is not cached.
    parse = functools.lru_cache(maxsize=200_000)(parse_once)

    parse._devhost_cached = True  # type: ignore[attr-defined]
    history_module.dt_parse = parse  # type: ignore[attr-defined]


_memoise_sdk_timestamp_parsing()


def _memoise_sdk_function(module_name: str, name: str, maxsize: int) -> None:
    """Put an ``lru_cache`` around the SDK module's ``name`` (once; left alone if absent)."""
    module = importlib.import_module(module_name)
    original = getattr(module, name, None)
    if original is not None and not hasattr(original, "cache_info"):
        setattr(module, name, functools.lru_cache(maxsize=maxsize)(original))


# The SDK's orchestration executor builds the same two-field ``namedtuple`` class each time it
# is created, once per episode; ``namedtuple`` compiles code for that (about 0.15 ms). The class
# is only used to build the executor's own constant table, so one class serves.
_memoise_sdk_function("azure.durable_functions.models.TaskOrchestrationExecutor", "namedtuple", 8)
# Every ``DurableOrchestrationContext`` parses the same two timer settings ("3.00:00:00" and
# "6.00:00:00") with a regular expression; the ``timedelta`` they give is immutable, so one
# parse of each text serves (an exception is not cached).
_memoise_sdk_function(
    "azure.durable_functions.models.DurableOrchestrationContext", "parse_timespan_attrib", 64
)


def _read_strict_typing_setting_directly() -> None:
    """``azure.functions`` reads its strict-typing setting from ``os.environ`` on every
    ``df_dumps``/``df_loads`` (about fifty times per HelloSequence5, 1-3 us each: the mapping
    raises and catches a ``KeyError`` for an unset variable). The same answer, read from the
    dictionary ``os.environ`` keeps its values in, costs a tenth of that; it still sees every
    change made through ``os.environ``. (tests/devhost/test_invoke_strict_typing.py compares
    it with the original.)"""
    original = getattr(durable_codec, "_is_strict_mode", None)
    variable = getattr(durable_codec, "_STRICT_ENV_VAR", None)
    truthy = getattr(durable_codec, "_TRUTHY", None)
    environ = os.environ
    values = getattr(environ, "_data", None)
    if (
        original is None
        or getattr(original, "_devhost_direct", False)
        or not isinstance(variable, str)
        or not isinstance(truthy, frozenset)
        or not isinstance(values, dict)
    ):
        return  # not the codec (or the os module) this was written for: leave it as it is
    key = environ.encodekey(variable)
    decode = environ.decodevalue

    def is_strict_mode() -> bool:
        raw = values.get(key)
        return raw is not None and decode(raw).strip().lower() in truthy

    is_strict_mode._devhost_direct = True  # type: ignore[attr-defined]
    durable_codec._is_strict_mode = is_strict_mode


_read_strict_typing_setting_directly()


def _reuse_codec_encoder_and_decoder() -> None:
    """``df_dumps`` calls ``json.dumps`` with a ``default`` and ``df_loads`` calls
    ``json.loads`` with an ``object_hook``, and with either ``json`` makes a new encoder or
    decoder (and its scanner) for each call: about fifty times per HelloSequence5, as the SDK
    encodes every activity's input and decodes every result again each episode. An encoder
    and a decoder hold no state between calls, so one of each with the same settings gives
    the same text and values (0.7 to 0.07 us for a short text, 1.8 to 0.5 us to decode one).
    Strict typing, an expected type, bytes, a leading byte order mark and the decoding that
    emits the codec's one-time notice go the codec's own way. Every SDK module that imported
    the two functions gets these (tests/devhost/test_invoke_codec.py compares them with the
    codec's own)."""
    dumps = getattr(durable_codec, "df_dumps", None)
    loads = getattr(durable_codec, "df_loads", None)
    serialize = getattr(durable_codec, "_serialize_custom_object", None)
    deserialize = getattr(durable_codec, "_deserialize_custom_object", None)
    notified = "_no_expected_type_notice_emitted"
    if (
        dumps is None
        or loads is None
        or serialize is None
        or deserialize is None
        or not hasattr(durable_codec, notified)
        or getattr(dumps, "_devhost_reused", False)
    ):
        return  # not the codec this was written for: leave it as it is
    encoder = json.JSONEncoder(default=serialize)
    decoder = json.JSONDecoder(object_hook=deserialize)

    def df_dumps(value: Any) -> str:
        if durable_codec._is_strict_mode():
            return dumps(value)
        return encoder.encode(value)

    def df_loads(s: str, expected_type: type | None = None) -> Any:
        if (
            expected_type is not None
            or type(s) is not str
            or s.startswith("\ufeff")
            or not getattr(durable_codec, notified, True)  # its one-time notice, from its place
            or durable_codec._is_strict_mode()
        ):
            return loads(s, expected_type)
        return decoder.decode(s)

    df_dumps.__doc__, df_loads.__doc__ = dumps.__doc__, loads.__doc__
    df_dumps.__wrapped__, df_loads.__wrapped__ = dumps, loads  # type: ignore[attr-defined]
    df_dumps._devhost_reused = df_loads._devhost_reused = True  # type: ignore[attr-defined]
    replacements = {id(dumps): df_dumps, id(loads): df_loads}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("azure.functions", "azure.durable_functions")):
            continue
        for attribute in ("df_dumps", "df_loads"):
            current = getattr(module, attribute, None)
            if current is dumps or current is loads:
                setattr(module, attribute, replacements[id(current)])


_reuse_codec_encoder_and_decoder()


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


class _ParsedTrigger(func.OrchestrationContext):
    """The trigger argument whose ``body`` is a ``ParsedContext`` (only for the SDK's handle,
    ``takes_parsed_context``)."""

    def __init__(self, parsed: ParsedContext) -> None:
        self._parsed = parsed

    @property
    def body(self) -> Any:
        return self._parsed


@functools.lru_cache(maxsize=4096)
def _declares_context(function: Callable[..., Any], bound: frozenset[str]) -> bool:
    """Whether ``function`` takes a ``context`` that no binding fills (the worker indexes this
    once; ``inspect.signature`` on every activity call was a fiftieth of the test host's CPU)."""
    return "context" in inspect.signature(function).parameters and "context" not in bound


def _extra_kwargs(info: FunctionInfo) -> dict[str, Any]:
    """The worker also passes an invocation ``context`` when the function declares one."""
    if _declares_context(info.func, frozenset(b["name"] for b in info.bindings)):
        return {
            "context": SimpleNamespace(
                invocation_id=str(uuid.uuid4()),
                function_name=info.name,
                function_directory="",
                trace_context=None,
                retry_context=None,
            )
        }
    return {}


def worker_error_message(exc: BaseException) -> str:
    """The worker reports ``f'{type(exc).__name__}: {exc}'`` (dispatcher._serialize_exception)."""
    return f"{type(exc).__name__}: {exc}"


def invoke_orchestrator(
    info: FunctionInfo, context: str | ParsedContext
) -> tuple[dict | None, str | None]:
    """Run one orchestrator episode through the SDK, with the trigger's payload as its JSON
    text or, for a function that ``takes_parsed_context``, already parsed.

    Returns ``(state, None)`` with the parsed reply (also on a user-code failure, whose reply
    carries ``error`` in the ``$OutOfProcData$`` payload), or ``(None, message)`` when the SDK
    failed without a reply.
    """
    trigger = (
        _ParsedTrigger(context)
        if type(context) is ParsedContext
        else func.OrchestrationContext(context)  # type: ignore[arg-type]
    )
    try:
        raw = info.func(**{info.trigger_param: trigger})
    except Exception as exc:  # user code or SDK failure: the worker turns it into an RpcException
        text = str(exc)
        if OUT_OF_PROC_MARKER in text:
            payload = text.split(OUT_OF_PROC_MARKER, 1)[1]
            try:
                return json.loads(payload), None
            except json.JSONDecodeError:
                pass
        return None, worker_error_message(exc)
    if isinstance(raw, str):
        return json.loads(raw), None
    return raw, None


async def invoke_activity(
    info: FunctionInfo,
    input_text: str | None,
    threads: ActivityThreads | None = None,
) -> tuple[bool, str | None, str]:
    """Run an activity. Returns ``(ok, result_json_or_None, error_text)``.

    ``input_text`` is the action's input string; the worker decodes it with ``df_loads``
    (falling back to the raw string). The result is ``df_dumps``-ed and then normalised to the
    compact JSON the host stores; ``None`` becomes no result (§4.2). A synchronous function
    runs on ``threads`` (else in the loop's default executor).
    """
    try:
        value: Any = None
        if input_text is not None:
            try:
                value = durable_codec.df_loads(input_text)
            except json.JSONDecodeError:
                value = input_text
        kwargs = {info.trigger_param: value, **_extra_kwargs(info)}
        if info.is_async:
            result = await info.func(**kwargs)
        elif threads is not None:
            result = await threads.run(lambda: info.func(**kwargs))
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(None, lambda: info.func(**kwargs))
        encoded = durable_codec.df_dumps(result)
    except Exception as exc:
        return False, None, failure_text(exc)
    return True, _stored_result(encoded), ""


def _stored_result(encoded: str) -> str | None:
    """The worker's ``df_dumps`` text as the host stores it: compact JSON, no ``null`` (§4.2).

    A text that is not an object or an array (a string, a number, true, false) has no
    separators, and ``json.dumps`` writes the value it parses to the same text again, so it
    is kept as it is (most activities return one of these)."""
    if encoded == "null":
        return None
    if encoded[:1] in ("{", "[", ""):
        return json.dumps(json.loads(encoded), separators=(",", ":"))
    return encoded


def failure_text(exc: BaseException) -> str:
    """The error line and the traceback of the user's frames (host frames are noise)."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if "/devhost/" not in frame.filename and "/concurrent/futures/" not in frame.filename
    ]
    stack = "".join(traceback.format_list(frames))
    return f"{worker_error_message(exc)}\n{stack}"


def activity_failure(activity_name: str, error_text: str) -> tuple[str, str]:
    """``TaskFailed`` Reason and Details as the extension writes them (§4.3).

    The reason keeps the leading space the extension leaves after ``Exception:``, hence the
    two spaces in ``failed:  ValueError: boom``. Details mimic the error serializer's JSON of
    the wrapping exception, with the Python traceback as the inner exception's stack.
    """
    message, _, stack = error_text.partition("\n")
    friendly = f" {message}"
    reason = f"Activity function '{activity_name}' failed: {friendly}"
    rpc_message = f"Result: Failure\nException: {message}\nStack: {stack}"
    details = {
        "$type": "System.Exception, System.Private.CoreLib",
        "ClassName": "System.Exception",
        "Message": friendly,
        "Data": None,
        "InnerException": {
            "$type": "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException, "
            "Microsoft.Azure.WebJobs.Script",
            "ClassName": "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException",
            "Message": rpc_message,
            "Data": None,
            "InnerException": None,
            "HelpURL": None,
            "StackTraceString": None,
            "RemoteStackTraceString": stack or None,
            "RemoteStackIndex": 0,
            "ExceptionMethod": None,
            "HResult": -2146233088,
            "Source": None,
            "WatsonBuckets": None,
        },
        "HelpURL": None,
        "StackTraceString": None,
        "RemoteStackTraceString": None,
        "RemoteStackIndex": 0,
        "ExceptionMethod": None,
        "HResult": -2146233088,
        "Source": None,
        "WatsonBuckets": None,
    }
    return reason, json.dumps(details, separators=(",", ":"))


def invoke_entity(info: FunctionInfo, batch_json: str) -> dict[str, Any]:
    """Run an entity batch (§5.1-5.2); returns the parsed reply."""
    context = func.EntityContext(batch_json)
    raw = info.func(**{info.trigger_param: context})
    return json.loads(raw) if isinstance(raw, str) else raw


def known_functions_message(kind: str, name: str, known: Mapping[str, FunctionInfo]) -> str:
    """The extension's text for a missing function (ThrowIfFunctionDoesNotExist), naming the
    ``known`` functions of that kind."""
    names = ", ".join(f"'{f.durable_name}'" for f in known.values())
    return (
        f"The function '{name}' doesn't exist, is disabled, or is not {_article(kind)} {kind} "
        f"function. Additional info: The following are the known {kind} functions: {names}."
    )


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


async def run_override(
    override: Callable[[Any], Any], input_text: str | None
) -> tuple[bool, str | None, str]:
    """Run a test's stand-in for an activity with the same encodings as the real thing."""
    try:
        value = durable_codec.df_loads(input_text) if input_text is not None else None
        result = override(value)
        if asyncio.iscoroutine(result):
            result = await result
        encoded = durable_codec.df_dumps(result)
    except Exception as exc:
        return False, None, failure_text(exc)
    return True, _stored_result(encoded), ""
