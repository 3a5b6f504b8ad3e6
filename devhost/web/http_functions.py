"""Calling an HTTP-triggered user function the way the Python worker does.

The request becomes an ``azure.functions.HttpRequest``; the function gets it under its trigger
parameter, the durable client binding JSON under its client parameter and, if it declares one,
a ``context`` parameter. Synchronous functions run in the loop's thread-pool executor (the
worker does the same), coroutines are awaited on the loop.

What comes back is converted like ``azure.functions.http.HttpResponseConverter.encode``: an
``HttpResponse`` keeps its status, headers and body, and gets ``Content-Type`` from
``mimetype``/``charset`` when it set none; a ``str`` is a 200. Anything else, ``None``
included, is what the worker reports as ``TypeError: unable to encode outgoing TypedData``
(azure-functions-python-worker issues #683 and #1047), and the host then answers 500 with an
empty body, the same as for an exception in user code. We log the traceback on
``devhost.http`` and keep serving.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import azure.functions as func
from aiohttp import web
from multidict import CIMultiDict

from devhost.app.loader import FunctionInfo
from devhost.log_format import log_fields

log = logging.getLogger("devhost.http")


class _TraceContext(func._abc.TraceContext):
    def __init__(self, trace_parent: str, trace_state: str) -> None:
        self._parent, self._state = trace_parent, trace_state

    @property
    def trace_state(self) -> str:
        return self._state

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class InvocationContext(func.Context):
    """The ``context`` argument a function may declare (``func.Context``)."""

    _thread_local = threading.local()

    def __init__(self, function_name: str, invocation_id: str, trace_parent: str = "") -> None:
        self._function_name = function_name
        self._invocation_id = invocation_id
        self._trace = _TraceContext(trace_parent, "")

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self) -> Any:
        return self._trace

    @property
    def retry_context(self) -> Any:
        return None


def request_origin(request: web.Request) -> str:
    """``scheme://host[:port]`` as the caller addressed us (used for the public URLs)."""
    return f"{request.scheme}://{request.host}"


def local_origin(request: web.Request) -> str:
    """The address the connection was accepted on, for in-process calls back to this server.

    The real ``rpcBaseUrl`` is loopback, never the public host name; the socket's own address
    stays reachable when the ``Host`` header names a proxy or tunnel.
    """
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = str(sockname[0]), sockname[1]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"
    return request_origin(request)


def _joined(pairs: Any) -> dict[str, str]:
    # The host hands the worker one string per name; repeated names arrive comma-joined
    # (StringValues.ToString()).
    values: dict[str, str] = {}
    for key, value in pairs:
        values[key] = f"{values[key]},{value}" if key in values else value
    return values


def to_function_request(
    request: web.Request, body: bytes, route_params: dict[str, str]
) -> func.HttpRequest:
    """The ``func.HttpRequest`` the worker would build for this request."""
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=_joined((k.lower(), v) for k, v in request.headers.items()),
        params=_joined(request.query.items()),
        route_params=route_params,
        body=body,
    )


def to_web_response(result: Any) -> web.Response:
    """Convert a function's return value; raises ``TypeError`` as the worker does."""
    if isinstance(result, str):
        return web.Response(status=200, text=result, content_type="text/plain", charset="utf-8")
    if isinstance(result, func.HttpResponse):
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in result.headers.items():
            # aiohttp frames the body itself; a stale length from user code would corrupt it.
            if name.lower() not in ("content-length", "transfer-encoding"):
                headers.add(name, str(value))
        if "content-type" not in headers:
            mimetype, charset = result.mimetype, result.charset
            text = mimetype.startswith("text/")
            headers["Content-Type"] = f"{mimetype}; charset={charset}" if text else mimetype
        return web.Response(status=result.status_code, body=result.get_body(), headers=headers)
    raise TypeError(
        'unable to encode outgoing TypedData: unsupported type "http" for Python type '
        f'"{type(result).__name__}"'
    )


def _call_kwargs(
    info: FunctionInfo, req: func.HttpRequest, client_json: Callable[[], str], invocation_id: str
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {info.trigger_param: req}
    if info.client_param:
        kwargs[info.client_param] = client_json()
    try:
        params = inspect.signature(info.func).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]  # a builtin without a signature: nothing more
    if "context" in params and "context" not in kwargs:
        trace_parent = req.headers.get("traceparent", "")
        kwargs["context"] = InvocationContext(info.name, invocation_id, trace_parent)
    return kwargs


async def invoke_http_function(
    info: FunctionInfo,
    request: web.Request,
    route_params: dict[str, str],
    client_json: Callable[[], str],
) -> web.Response:
    """Run one HTTP-triggered function for ``request`` and build the response.

    Parameters
    ----------
    info : FunctionInfo
        The function, from the app index.
    request : aiohttp.web.Request
        The incoming request.
    route_params : dict
        Values of the route template's parameters.
    client_json : callable
        Returns the durable client binding JSON; called only if the function has a client.

    Returns
    -------
    aiohttp.web.Response
        The function's response, or an empty 500 when the function failed.
    """
    invocation_id = str(uuid.uuid4())
    started = time.perf_counter()
    try:
        body = await request.read()
        req = to_function_request(request, body, route_params)
        kwargs = _call_kwargs(info, req, client_json, invocation_id)
        if info.is_async:
            result = await info.func(**kwargs)
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(None, functools.partial(info.func, **kwargs))
            if inspect.isawaitable(result):  # a sync wrapper around a coroutine function
                result = await result
        response = to_web_response(result)
    except Exception:
        log.exception(
            "Executed 'Functions.%s' (Failed, Id=%s): %s %s",
            info.name,
            invocation_id,
            request.method,
            request.path_qs,
            extra=log_fields(workflow=info.name, event="http_failed"),
        )
        return web.Response(status=500)
    elapsed_ms = (time.perf_counter() - started) * 1000
    log.info(
        "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms): %s %s -> %d",
        info.name,
        invocation_id,
        elapsed_ms,
        request.method,
        request.path_qs,
        response.status,
        extra=log_fields(workflow=info.name, event="http_completed", duration_ms=elapsed_ms),
    )
    return response
