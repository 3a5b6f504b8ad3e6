"""Calling the app's durable functions the way the Python worker does (protocol notes §1.2-1.3).

Payloads go through the converters of ``azure.functions`` itself (``df_loads``/``df_dumps``,
``OrchestrationContext``), so encodings match the real worker byte for byte.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import traceback
import uuid
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import azure.functions as func
from azure.functions import _durable_functions as durable_codec

from devhost.app.loader import FunctionInfo
from devhost.engine import sdk_speedups  # noqa: F401  (the SDK's work made cheaper, once per process)
from devhost.engine.activity_threads import ActivityThreads
from devhost.engine.sdk_context import ParsedContext, ParsedTrigger

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"


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
        ParsedTrigger(context)
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
