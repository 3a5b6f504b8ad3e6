"""``python -m devhost``: run a Python Durable Functions app locally without Core Tools.

Commands
--------
start   serve the app over HTTP with the durable engine on Azure Storage (Azurite by default)
replay  re-run recorded histories against today's orchestrator code (determinism check)
keys    print the host's access keys (created in storage on first use, as the real host does)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from devhost.app.loader import AppLoadError, load_app
from devhost.config import ConfigError, HostConfig, load_config

if TYPE_CHECKING:
    from devhost.web.key_store import BlobKeyStore

log = logging.getLogger("devhost")

AZURITE_PORTS = (10000, 10001, 10002)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Run an Azure Durable Functions Python app (v2 model) locally: real HTTP, "
        "the /runtime/webhooks/durabletask API, replay through the real SDK, state in Azure "
        "Storage (Azurite started for you).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="serve the app until Ctrl-C")
    start.add_argument(
        "--app", default=".", help="folder holding function_app.py and host.json (default: .)"
    )
    start.add_argument("--port", type=int, default=7071, help="HTTP port (default: 7071)")
    start.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    start.add_argument(
        "--no-azurite",
        action="store_true",
        help="never start Azurite, even when AzureWebJobsStorage is development storage",
    )
    start.add_argument(
        "--task-hub", help="task hub name (default: extensions.durableTask.hubName of host.json)"
    )
    start.add_argument(
        "--verbose", "-v", action="store_true", help="log engine activity (episodes, recoveries)"
    )
    start.add_argument(
        "--enforce-keys",
        action="store_true",
        help="check access keys as Azure does (?code= or x-functions-key; the system key for "
        "/runtime/webhooks/durabletask); off by default, as with func start",
    )
    keys = commands.add_parser(
        "keys",
        help="print the host's access keys as JSON",
        description="Print {masterKey, functionKeys, systemKeys} of the app's host. Keys live "
        "in the blob container azure-webjobs-secrets of the app's storage account, as on "
        "Azure; they are created on first use and never written to the app's folder.",
    )
    keys.add_argument("--app", default=".", help="folder holding host.json (default: .)")
    replay = commands.add_parser(
        "replay",
        help="check that today's orchestrator code replays recorded histories",
        description="Re-run histories against the app's current orchestrators and report the "
        "first action that no longer matches. Histories come from JSON files (a list of events, "
        "or a status object with historyEvents is NOT enough: use the raw History table "
        "export or a file written by the test engine), or from storage with --instance.",
    )
    replay.add_argument("files", nargs="*", help="history JSON files")
    replay.add_argument("--app", default=".", help="folder holding function_app.py (default: .)")
    replay.add_argument(
        "--instance", action="append", default=[], help="instance ID to read from storage"
    )
    replay.add_argument(
        "--all-running", action="store_true", help="check every unfinished instance in storage"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.command == "start" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "start":
            return asyncio.run(_start(args))
        if args.command == "keys":
            return asyncio.run(_print_keys(args))
        from devhost.replay_check import run_replay_command

        return asyncio.run(run_replay_command(args))
    except (AppLoadError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _start(args: argparse.Namespace) -> int:
    from aiohttp import web

    from devhost.azurite import AzuriteError, is_development_storage, ports_listening, start_azurite
    from devhost.engine.runtime import Engine
    from devhost.store.azure import AzureStore
    from devhost.store.retrying import RetryingStore
    from devhost.web.key_store import KeyGuard
    from devhost.web.server import create_web_app, function_urls

    # The Azure SDKs log every request at INFO; keep the console to what a user needs.
    logging.getLogger("azure").setLevel(logging.WARNING)
    if not args.verbose:
        logging.getLogger("devhost.engine").setLevel(logging.WARNING)
    config = load_config(args.app)
    if args.task_hub:
        config.task_hub = args.task_hub
    if not config.storage_connection:
        print(
            "error: AzureWebJobsStorage is not set (local.settings.json or the environment).",
            file=sys.stderr,
        )
        return 2
    sys.path.insert(0, str(config.app_dir))
    index = load_app(config.app_dir)

    azurite = None
    if is_development_storage(config.storage_connection) and not ports_listening(
        "127.0.0.1", AZURITE_PORTS
    ):
        if args.no_azurite:
            print(
                "error: development storage is configured but Azurite is not running "
                "(start it, or drop --no-azurite).",
                file=sys.stderr,
            )
            return 2
        try:
            azurite = await asyncio.to_thread(
                start_azurite, config.app_dir, config.app_dir / ".azurite", AZURITE_PORTS
            )
        except AzuriteError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("Azurite started (data in .azurite/).")

    # Storage trouble is retried and reported once per outage (devhost.store.retrying).
    store = RetryingStore(AzureStore(config.storage_connection, config.task_hub))
    engine = Engine(index, store, task_hub=config.task_hub, settings=config.engine)
    runner: web.AppRunner | None = None
    key_store = _key_store(config) if args.enforce_keys else None
    try:
        keys = await KeyGuard.open(key_store) if key_store is not None else None
        # Recovery of unfinished work can take a while with many instances in flight.
        log.info("Task hub %s: recovering unfinished work...", config.task_hub)
        await engine.start()
        runner = web.AppRunner(
            create_web_app(index, engine, route_prefix=config.route_prefix, keys=keys),
            access_log=None,
        )
        await runner.setup()
        await web.TCPSite(runner, args.host, args.port).start()
        shown_host = "localhost" if args.host in ("127.0.0.1", "0.0.0.0") else args.host
        origin = f"http://{shown_host}:{args.port}"
        print(f"\nTask hub: {config.task_hub}   Settings: {config.settings_file or '(none)'}\n")
        print("Functions:\n")
        for name, trigger, url in function_urls(index, origin, config.route_prefix):
            print(f"        {name}: {trigger} {url or ''}".rstrip())
        print(f"\nDurable management API: {origin}/runtime/webhooks/durabletask/instances")
        if keys is not None:
            print(
                "Access keys are enforced (?code= or x-functions-key); "
                "'python -m devhost keys' prints them."
            )
        print("\nServing. Press Ctrl-C to stop.", flush=True)
        await _wait_for_stop_signal()
        print("Stopping: finishing in-flight work and writing a last checkpoint...", flush=True)
    finally:
        if runner is not None:
            await runner.cleanup()
        await engine.stop()
        if key_store is not None:
            await key_store.close()
        if azurite is not None:
            azurite.stop()
    return 0


def _key_store(config: HostConfig) -> BlobKeyStore:
    from devhost.web.key_store import BlobKeyStore, default_host_id

    # The real host keeps its keys in the AzureWebJobsStorage account (by default the task
    # hub's account too).
    connection = os.environ.get("AzureWebJobsStorage") or config.storage_connection
    return BlobKeyStore(connection, default_host_id(config.app_dir))


async def _print_keys(args: argparse.Namespace) -> int:
    from devhost.azurite import is_development_storage, ports_listening
    from devhost.web.key_store import load_or_create_host_keys

    config = load_config(args.app)
    if not config.storage_connection:
        print("error: AzureWebJobsStorage is not set.", file=sys.stderr)
        return 2
    if is_development_storage(config.storage_connection) and not ports_listening(
        "127.0.0.1", AZURITE_PORTS
    ):
        print("error: Azurite is not running; start the host (or Azurite) first.", file=sys.stderr)
        return 2
    store = _key_store(config)
    try:
        keys = await load_or_create_host_keys(store)
    finally:
        await store.close()
    print(json.dumps(keys.to_info(), indent=2))
    return 0


async def _wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["main", "Path"]
