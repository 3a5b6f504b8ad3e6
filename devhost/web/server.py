"""The HTTP front of the local host: management API first, then the app's HTTP functions.

Everything goes through one catch-all aiohttp handler so that matching is ours, not
aiohttp's: the durable API answers under ``/runtime/webhooks/durabletask/`` (the public webhook
base) and ``/durabletask/`` (where the binding's ``rpcBaseUrl`` points, see
:mod:`devhost.web.binding`), both case-insensitive like every route of the real host; any
other path is resolved by the function route table with ASP.NET precedence.

With a :class:`~devhost.web.key_store.KeyGuard` (``--enforce-keys``) requests are checked as the
real host checks them: the webhook base needs the system key, a user function the key its auth
level asks for (after routing, so an unknown path is still 404), and the RPC base answers only
loopback callers that know the guard's token, which the client binding's ``rpcBaseUrl`` carries.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable
from typing import Protocol

from aiohttp import web

from devhost.app.loader import FunctionIndex, FunctionInfo
from devhost.engine.api import Backend
from devhost.web.binding import RPC_PATH, WEBHOOK_PATH, client_binding_json
from devhost.web.http_functions import invoke_http_function, local_origin, request_origin
from devhost.web.key_store import KeyGuard
from devhost.web.management import ManagementApi, bare_response
from devhost.web.routes import (
    ALL_METHODS,
    RouteTable,
    function_route,
    function_route_table,
    split_path,
)

# Kestrel's request body limit in the Functions host (100 MB); aiohttp's default is 1 MB.
MAX_REQUEST_BODY = 100 * 1024 * 1024

MANAGEMENT_BASES = (WEBHOOK_PATH.lower(), RPC_PATH.rstrip("/").lower())


class HostPage(Protocol):
    """A page of the local host itself (the monitor), served before any function route."""

    def owns(self, raw_path: str) -> bool: ...

    def handle(self, request: web.Request) -> Awaitable[web.StreamResponse]: ...


ROUTE_TABLE = web.AppKey("route_table", RouteTable[FunctionInfo])
MANAGEMENT_API = web.AppKey("management_api", ManagementApi)


def management_segments(raw_path: str) -> list[str] | None:
    """The decoded segments below a management base, or None for any other path."""
    found = _management_base(raw_path)
    return None if found is None else found[1]


def _management_base(raw_path: str) -> tuple[str, list[str]] | None:
    lowered = raw_path.lower()
    for base in MANAGEMENT_BASES:
        if lowered == base or lowered.startswith(base + "/"):
            return base, split_path(raw_path[len(base) :])
    return None


def _is_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address((request.remote or "").split("%")[0]).is_loopback
    except ValueError:
        return False


async def _guard_management(
    keys: KeyGuard, request: web.Request, base: str, segments: list[str]
) -> web.Response | list[str]:
    """The segments to serve, or the refusal (401 on the webhook, 404 for a bad RPC call)."""
    if base == WEBHOOK_PATH.lower():
        refused = await keys.check_webhook(request)
        return refused if refused is not None else segments
    token = segments[0] if segments else ""
    if _is_loopback(request) and hmac.compare_digest(token.encode(), keys.rpc_token.encode()):
        return segments[1:]
    return bare_response(404)


def create_web_app(
    index: FunctionIndex,
    backend: Backend,
    *,
    route_prefix: str = "api",
    keys: KeyGuard | None = None,
    host_page: HostPage | None = None,
) -> web.Application:
    """Build the aiohttp application serving the app's HTTP functions and the durable API.

    Parameters
    ----------
    index : FunctionIndex
        The indexed function app (``devhost.app.loader.load_app``/``index_app``).
    backend : Backend
        The engine behind the management API and the client binding.
    route_prefix : str
        ``extensions.http.routePrefix`` of host.json; ``""`` serves functions at the root.
    keys : KeyGuard, optional
        Enforce access keys as the real host does; None (the default, as ``func start``)
        lets every request through.
    host_page : HostPage | None
        A page of the host (the monitor, under ``/_devhost/monitor/``), matched before the
        function routes so no route of the app can shadow it. It guards itself (this machine
        only, see ``devhost.monitor.guard``), with or without ``keys``.

    Returns
    -------
    aiohttp.web.Application
        Ready for ``web.AppRunner``/``web.run_app`` or aiohttp's test server.
    """
    app = web.Application(client_max_size=MAX_REQUEST_BODY)
    system_key = keys.system_key if keys is not None else None
    rpc_path = RPC_PATH if keys is None else f"{RPC_PATH}{keys.rpc_token}/"
    management = ManagementApi(backend, system_key=system_key)
    table = function_route_table(index.http, route_prefix)
    app[MANAGEMENT_API] = management
    app[ROUTE_TABLE] = table

    async def dispatch(request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        found = _management_base(raw_path)
        if found is not None:
            base, segments = found
            if keys is not None:
                guarded = await _guard_management(keys, request, base, segments)
                if isinstance(guarded, web.Response):
                    return guarded
                segments = guarded
            return await management.handle(request, segments)
        if host_page is not None and host_page.owns(raw_path):
            return await host_page.handle(request)
        match = table.resolve(request.method, raw_path)
        if match is None:
            return bare_response(404)
        if keys is not None:
            refused = await keys.check_function(request, match.target.name, match.target.auth_level)
            if refused is not None:
                return refused

        def binding() -> str:
            return client_binding_json(
                request_origin(request),
                backend.task_hub,
                rpc_origin=local_origin(request),
                system_key=system_key,
                rpc_path=rpc_path,
            )

        return await invoke_http_function(match.target, request, match.route_params, binding)

    app.router.add_route("*", "/{path:.*}", dispatch)
    return app


def _trigger_type(info: FunctionInfo) -> str:
    for binding in info.bindings:
        kind = str(binding.get("type", ""))
        if kind.endswith("Trigger"):
            return kind
    return info.kind


def function_urls(
    index: FunctionIndex, origin: str, route_prefix: str = "api"
) -> list[tuple[str, str, str | None]]:
    """What Core Tools lists at start-up: ``(name, trigger, url or None)`` per function.

    HTTP functions come first, their trigger shown as the methods (``[GET,POST]``) and their
    URL as the route template under ``origin``; the others show their trigger type.
    """
    base = origin.rstrip("/")
    http = [
        (
            info.name,
            "[" + ",".join(info.methods or ALL_METHODS) + "]",
            f"{base}/{function_route(info, route_prefix)}",
        )
        for info in index.http
    ]
    others: list[tuple[str, str, str | None]] = [
        (info.name, _trigger_type(info), None) for info in index.functions if info.kind != "http"
    ]
    return [*http, *others]
