"""``python -m devhost``: run a Python Durable Functions app locally without Core Tools.

Commands
--------
start   serve the app over HTTP with the durable engine on Azure Storage (Azurite by default)
replay  re-run recorded histories against today's orchestrator code (determinism check)
keys    print the host's access keys (created in storage on first use, as the real host does)
monitor serve the monitor page on any task hub (the host serves it on its own hub too)
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
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from devhost.app.loader import AppLoadError, FunctionIndex, load_app
from devhost.azurite import (
    AzuriteError,
    AzuriteProcess,
    azurite_project,
    emulator_endpoint,
    ports_listening,
    start_azurite,
)
from devhost.config import ConfigError, HostConfig, load_config
from devhost.engine.collector import tune_for_host
from devhost.log_format import configure_logging
from devhost.preflight import (
    StartupError,
    check_app_folder,
    check_port,
    check_storage,
    port_taken,
    storage_failure,
)
from devhost.storage_settings import (
    STORAGE_CONNECTION,
    StorageConnection,
    StorageSettingsError,
    resolve_storage,
)
from devhost.timers.schedule import ScheduleError

if TYPE_CHECKING:
    from devhost.engine.runtime import Engine
    from devhost.monitor.server import Monitor
    from devhost.timers.scheduler import TimerFunction, TimerScheduler
    from devhost.web.key_store import BlobKeyStore, KeyGuard

log = logging.getLogger("devhost")

# What a user can get wrong in the app, its settings or the machine: each has a one-sentence
# message that names the thing and what to do.
_MISTAKES = (AppLoadError, AzuriteError, ConfigError, ScheduleError, StartupError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devhost",  # also `python -m devhost`
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
        help="never start Azurite, even when the storage setting names one that is not running",
    )
    start.add_argument(
        "--task-hub", help="task hub name (default: extensions.durableTask.hubName of host.json)"
    )
    start.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="log engine activity (episodes, recoveries); show the traceback of a start-up error",
    )
    start.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text (key=value fields after each message) or json (one object per line)",
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
    from devhost.monitor.launch import add_monitor_command

    add_monitor_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(
        logging.INFO if args.command == "start" else logging.WARNING,
        getattr(args, "log_format", "text"),
    )
    try:
        if args.command == "start":
            return asyncio.run(_start(args))
        if args.command == "keys":
            return asyncio.run(_print_keys(args))
        if args.command == "monitor":
            from devhost.monitor.launch import run_monitor_command

            return asyncio.run(run_monitor_command(args, _wait_for_stop_signal))
        from devhost.replay_check import run_replay_command

        return asyncio.run(run_replay_command(args))
    except _MISTAKES as exc:
        # A mistake in the app, its settings or the machine: one sentence, no traceback
        # unless asked for.
        if getattr(args, "verbose", False):
            traceback.print_exception(exc, file=sys.stderr)
            if isinstance(exc, AzuriteError) and exc.log_tail:
                print(f"Azurite's log ends with:\n{exc.log_tail}", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _start_azurite(args: argparse.Namespace, config: HostConfig) -> AzuriteProcess | None:
    """Start Azurite when the storage setting names one on this machine that is not running."""
    connection_string = config.storage.connection_string
    emulator = None if connection_string is None else emulator_endpoint(connection_string)
    if emulator is None:
        return None
    host, ports = emulator
    where = f"{host} (ports {', '.join(map(str, ports))})"
    if ports_listening(host, ports):
        return None
    if args.no_azurite:
        raise StartupError(
            f"{config.storage.setting} names Azurite on {where} but it is not running: start it, "
            "or drop --no-azurite."
        )
    azurite = await asyncio.to_thread(
        start_azurite, azurite_project(config.app_dir), config.app_dir / ".azurite", ports
    )
    print(f"Azurite started on {where} (data in .azurite/).", flush=True)
    return azurite


async def _start(args: argparse.Namespace) -> int:
    from aiohttp import web

    from devhost.engine.runtime import Engine
    from devhost.monitor.launch import host_monitor
    from devhost.store.azure import AzureStore
    from devhost.store.base import Store
    from devhost.store.retrying import RetryingStore, StorageUnavailable
    from devhost.timers.scheduler import timer_functions
    from devhost.web.key_store import KeyGuard
    from devhost.web.server import create_web_app

    # The Azure SDKs log every request at INFO; keep the console to what a user needs.
    logging.getLogger("azure").setLevel(logging.WARNING)
    if not args.verbose:
        # A credential that finds no token logs every attempt; the start-up error says it once.
        logging.getLogger("azure.identity").setLevel(logging.ERROR)
    if not args.verbose:
        logging.getLogger("devhost.engine").setLevel(logging.WARNING)
    app_dir = Path(args.app).resolve()
    check_app_folder(app_dir)
    check_port(args.host, args.port)
    config = load_config(app_dir, task_hub=args.task_hub)
    sys.path.insert(0, str(config.app_dir))
    index = load_app(config.app_dir)
    timers = timer_functions(index, dict(os.environ), datetime.now(UTC))

    azurite = await _start_azurite(args, config)
    store: Store | None = None
    engine: Engine | None = None
    runner: web.AppRunner | None = None
    scheduler: TimerScheduler | None = None
    monitor: Monitor | None = None
    key_store = _key_store(config) if args.enforce_keys else None
    try:
        await check_storage(config.storage)
        # Storage trouble is retried and reported once per outage (devhost.store.retrying).
        store = RetryingStore(
            AzureStore(config.storage, config.task_hub, partition_count=config.partition_count)
        )
        # What is loaded by now (the app, the SDKs, the storage clients) lives as long as the
        # host: kept out of the cyclic collector's way, whose full collections otherwise walk
        # it all again and again, and young collections made rarer (docs/benchmarks.md).
        tune_for_host()
        engine = Engine(index, store, task_hub=config.task_hub, settings=config.engine)
        monitor = host_monitor(store, engine, config.app_dir)
        try:
            keys = await KeyGuard.open(key_store) if key_store is not None else None
            # Recovery of unfinished work can take a while with many instances in flight.
            log.info("Task hub %s: recovering unfinished work...", config.task_hub)
            await engine.start()
        except Exception as exc:
            # What the store gave up on is what the start-up message should name.
            cause = exc.__cause__ if isinstance(exc, StorageUnavailable) else exc
            failure = storage_failure(
                cause if isinstance(cause, Exception) else exc, config.storage
            )
            if failure is None:
                raise
            raise failure from exc
        runner = web.AppRunner(
            create_web_app(
                index,
                engine,
                route_prefix=config.route_prefix,
                keys=keys,
                host_page=monitor,
            ),
            access_log=None,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, args.host, args.port).start()
        except OSError as exc:
            raise port_taken(args.host, args.port, exc) from exc
        if timers:
            scheduler = _timer_scheduler(args, config, timers, engine, keys)
            await scheduler.start()
        _print_banner(args, config, index, scheduler, keys_enforced=keys is not None)
        await _wait_for_stop_signal()
        print("Stopping: finishing in-flight work and writing a last checkpoint...", flush=True)
    finally:
        if scheduler is not None:
            await scheduler.stop()
        if runner is not None:
            await runner.cleanup()
        if monitor is not None:
            await monitor.close()
        if engine is not None:
            await engine.stop()
        elif store is not None:
            await store.close()
        if key_store is not None:
            await key_store.close()
        if azurite is not None:
            azurite.stop()
    return 0


def _origins(args: argparse.Namespace) -> tuple[str, str]:
    """The origin people use, and the one this process calls itself on."""
    shown_host = "localhost" if args.host in ("127.0.0.1", "0.0.0.0") else args.host
    local_host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    if ":" in local_host:
        local_host = f"[{local_host}]"
    return f"http://{shown_host}:{args.port}", f"http://{local_host}:{args.port}"


def _timer_scheduler(
    args: argparse.Namespace,
    config: HostConfig,
    timers: list[TimerFunction],
    engine: Engine,
    keys: KeyGuard | None,
) -> TimerScheduler:
    """The timer listeners: statuses and locks in the host's account, under its host ID; a
    durable client reaches this server as the HTTP functions' clients do."""
    from devhost.timers.monitor import BlobTimerState
    from devhost.timers.scheduler import TimerScheduler
    from devhost.web.binding import RPC_PATH, client_binding_json
    from devhost.web.key_store import default_host_id

    origin, local = _origins(args)
    system_key = keys.system_key if keys is not None else None
    rpc_path = RPC_PATH if keys is None else f"{RPC_PATH}{keys.rpc_token}/"

    def binding() -> str:
        return client_binding_json(
            origin, engine.task_hub, rpc_origin=local, system_key=system_key, rpc_path=rpc_path
        )

    state = BlobTimerState(_host_account(config), default_host_id(config.app_dir))
    return TimerScheduler(timers, state, engine.clock, client_binding=binding)


def _print_banner(
    args: argparse.Namespace,
    config: HostConfig,
    index: FunctionIndex,
    scheduler: TimerScheduler | None,
    *,
    keys_enforced: bool,
) -> None:
    from devhost.monitor.launch import monitor_url
    from devhost.timers.scheduler import next_occurrence_text
    from devhost.web.server import function_urls

    origin, _ = _origins(args)
    schedules = {t.name: t.schedule for t in scheduler.timers} if scheduler is not None else {}
    notice = config.provider_notice()
    if notice:
        print(f"\n{notice}")
    print(
        f"\nTask hub: {config.task_hub} ({config.task_hub_source})\n"
        f"Storage: {config.storage.describe()}\n"
        f"Settings: {config.settings_file or '(none)'}\n"
    )
    print("Functions:\n")
    for name, trigger, url in function_urls(index, origin, config.route_prefix):
        if scheduler is not None and name in schedules:
            when = next_occurrence_text(scheduler.next_occurrences.get(name))
            url = f"({schedules[name]}, {when})"
        print(f"        {name}: {trigger} {url or ''}".rstrip())
    print(f"\nDurable management API: {origin}/runtime/webhooks/durabletask/instances")
    if keys_enforced:
        print(
            "Access keys are enforced (?code= or x-functions-key); "
            "'python -m devhost keys' prints them."
        )
    print(f"Monitor: {monitor_url(origin)}")
    print("\nServing. Press Ctrl-C to stop.", flush=True)


def _host_account(config: HostConfig) -> StorageConnection:
    """The host's own account (keys, timer statuses and locks): AzureWebJobsStorage, as on
    Azure (by default the task hub's account too, which host.json may move elsewhere)."""
    try:
        return resolve_storage(connection=STORAGE_CONNECTION, services=("blob",))
    except StorageSettingsError:
        return config.storage


def _key_store(config: HostConfig) -> BlobKeyStore:
    from devhost.web.key_store import BlobKeyStore, default_host_id

    return BlobKeyStore(_host_account(config), default_host_id(config.app_dir))


async def _print_keys(args: argparse.Namespace) -> int:
    from devhost.web.key_store import load_or_create_host_keys

    config = load_config(args.app)
    account = _host_account(config)
    emulator = (
        None if account.connection_string is None else emulator_endpoint(account.connection_string)
    )
    if emulator is not None and not ports_listening(*emulator):
        raise StartupError(
            f"Azurite is not running on {emulator[0]}: start the host (or Azurite) first."
        )
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
