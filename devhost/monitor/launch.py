"""Putting a monitor together: inside the local host, or alone on any task hub."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from devhost.engine.api import Backend
from devhost.monitor.actions import Actions, EngineActions, ManagementApiActions
from devhost.monitor.connection import open_hub_store
from devhost.monitor.guard import new_token
from devhost.monitor.payloads import MONITOR_PATH, is_monitor_path
from devhost.monitor.plugin import load_plugin
from devhost.monitor.reader import HubReader
from devhost.monitor.server import Monitor
from devhost.store.base import Store

HOST_KEY_VARIABLE = "DEVHOST_MONITOR_HOST_KEY"


def host_monitor(store: Store, backend: Backend, app_dir: Path | None) -> Monitor:
    """The monitor the local host serves: its own hub, acting through its own engine."""
    return Monitor(
        HubReader(store), load_plugin(app_dir), EngineActions(backend), token=new_token()
    )


def monitor_url(origin: str) -> str:
    """Where the monitor's page is under a host's origin."""
    return origin.rstrip("/") + MONITOR_PATH + "/"


def standalone_app(monitor: Monitor) -> web.Application:
    """An aiohttp application serving only the monitor (any other path leads to its page)."""
    app = web.Application(client_max_size=1024 * 1024)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        if is_monitor_path(request.rel_url.raw_path):
            return await monitor.handle(request)
        raise web.HTTPFound(MONITOR_PATH + "/")

    app.router.add_route("*", "/{path:.*}", dispatch)
    return app


def add_monitor_command(commands: argparse._SubParsersAction) -> None:
    """The ``monitor`` subcommand's arguments."""
    monitor = commands.add_parser(
        "monitor",
        help="open the monitor page on any task hub (Azurite or an Azure Storage account)",
        description="Serve the monitor page for a task hub, reading its Instances and History "
        "tables. Actions go through the management API of the host that runs the hub "
        "(--host-url); without one, or with --read-only, the page only reads.",
    )
    monitor.add_argument(
        "--connection",
        help="storage connection string (default: AzureWebJobsStorage from the environment, "
        "a connection string or the identity-based AzureWebJobsStorage__accountName)",
    )
    monitor.add_argument("--task-hub", required=True, help="task hub name")
    monitor.add_argument("--read-only", action="store_true", help="offer and accept no action")
    monitor.add_argument(
        "--host-url",
        help="origin of the host running the hub, for actions (http://localhost:7071, "
        "https://APP.azurewebsites.net)",
    )
    monitor.add_argument(
        "--host-key",
        default=os.environ.get(HOST_KEY_VARIABLE),
        help=f"the host's durabletask_extension system key (default: ${HOST_KEY_VARIABLE})",
    )
    monitor.add_argument(
        "--app",
        help="the app's folder, for its monitor_views (event forms, per-workflow views)",
    )
    monitor.add_argument("--port", type=int, default=7072, help="HTTP port (default: 7072)")


async def run_monitor_command(
    args: argparse.Namespace, until_stopped: Callable[[], Awaitable[None]]
) -> int:
    """``python -m devhost monitor``: serve the page until ``until_stopped`` returns (Ctrl-C)."""
    app_dir = None
    if args.app:
        from devhost.config import load_config

        app_dir = load_config(args.app).app_dir
        if args.connection:
            # The app's views read its own tables in the same account as the hub.
            os.environ["AzureWebJobsStorage"] = args.connection
    try:
        store = open_hub_store(args.connection, args.task_hub)
    except ValueError as error:  # StorageSettingsError too: it names the settings looked for
        print(f"error: {error}", file=sys.stderr)
        return 2
    actions: Actions | None = None
    reason = None
    if args.read_only:
        reason = "Read-only (--read-only): no actions."
    elif args.host_url:
        actions = ManagementApiActions(args.host_url, args.host_key)
    else:
        reason = "Read-only: no --host-url given to act through."
    monitor = Monitor(
        HubReader(store), load_plugin(app_dir), actions, token=new_token(), read_only_reason=reason
    )
    runner = web.AppRunner(standalone_app(monitor), access_log=None)
    try:
        await runner.setup()
        # Loopback only: the guard refuses other peers anyway.
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        print(f"Task hub: {args.task_hub}" + ("   (read-only)" if actions is None else ""))
        print(f"Monitor: {monitor_url(f'http://localhost:{args.port}')}", flush=True)
        await until_stopped()
    finally:
        await runner.cleanup()
        await monitor.close()
        await store.close()
    return 0
