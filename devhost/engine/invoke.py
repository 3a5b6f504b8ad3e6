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


def _reuse_sdk_payload_class() -> None:
    """The SDK's orchestration executor builds the same two-field ``namedtuple`` class each
    time it is created, once per episode; ``namedtuple`` compiles code for that (about 0.15 ms).
    The class is only used to build the executor's own constant table, so one class serves."""
    executor_module = importlib.import_module(
        "azure.durable_functions.models.TaskOrchestrationExecutor"
    )
    make_class = getattr(executor_module, "namedtuple", None)
    if make_class is not None and not hasattr(make_class, "cache_info"):
        executor_module.namedtuple = functools.lru_cache(maxsize=8)(make_class)  # type: ignore[attr-defined]


_reuse_sdk_payload_class()


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


def invoke_orchestrator(info: FunctionInfo, context_json: str) -> tuple[dict | None, str | None]:
    """Run one orchestrator episode through the SDK.

    Returns ``(state, None)`` with the parsed reply (also on a user-code failure, whose reply
    carries ``error`` in the ``$OutOfProcData$`` payload), or ``(None, message)`` when the SDK
    failed without a reply.
    """
    context = func.OrchestrationContext(context_json)
    try:
        raw = info.func(**{info.trigger_param: context})
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
    """The worker's ``df_dumps`` text as the host stores it: compact JSON, no ``null`` (§4.2)."""
    return None if encoded == "null" else json.dumps(json.loads(encoded), separators=(",", ":"))


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
