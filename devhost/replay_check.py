"""The replay check: would today's orchestrator code still replay these recorded histories?

Deploying a changed orchestrator breaks instances that are already running if the new code
schedules different work at a recorded step. This re-runs each history through the real SDK
and the host-side replay, without executing anything, and reports the first step that no
longer matches (the same ``Non-Deterministic workflow detected`` the host would fail with).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost.app.loader import FunctionIndex, load_app
from devhost.engine.history import EventType
from devhost.engine.invoke import invoke_orchestrator
from devhost.engine.replay import HostReplay


@dataclass
class ReplayReport:
    source: str
    instance_id: str
    orchestrator: str
    ok: bool
    problem: str = ""


def check_history(
    index: FunctionIndex, history: list[dict[str, Any]], source: str = ""
) -> ReplayReport:
    """Replay one execution's history against the app's current code."""
    started = next((e for e in history if e["EventType"] == EventType.ExecutionStarted), None)
    if started is None:
        return ReplayReport(source, "?", "?", False, "the history has no ExecutionStarted event")
    instance_id = started["OrchestrationInstance"]["InstanceId"]
    execution_id = started["OrchestrationInstance"].get("ExecutionId", "")
    name = started["Name"]
    info = index.orchestrator(name)
    if info is None:
        return ReplayReport(
            source, instance_id, name, False, f"no orchestrator named '{name}' in the app"
        )
    parent = started.get("ParentInstance") or {}
    stored_input = started.get("Input")
    context = {
        "history": [{**e, "IsPlayed": True} for e in history],
        "input": json.loads(stored_input) if stored_input is not None else None,
        "instanceId": instance_id,
        "isReplaying": True,
        "parentInstanceId": (parent.get("OrchestrationInstance") or {}).get("InstanceId"),
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": 2,
        "longRunningTimerIntervalDuration": "3.00:00:00",
        "maximumShortTimerDuration": "6.00:00:00",
    }
    reply, crash = invoke_orchestrator(info, json.dumps(context))
    if reply is None:
        return ReplayReport(source, instance_id, name, False, f"the orchestrator crashed: {crash}")
    result = HostReplay(
        instance_id=instance_id,
        execution_id=execution_id,
        orchestrator_name=info.durable_name,
        history=history,
        reply=reply,
    ).run(new_events_from=len(history))
    outcome = result.outcome
    if (
        outcome is not None
        and outcome.status == "Failed"
        and outcome.details
        and ("Non-Deterministic" in outcome.details)
    ):
        return ReplayReport(source, instance_id, name, False, outcome.details)
    return ReplayReport(source, instance_id, name, True)


class HistoryFileError(ValueError):
    """A history file that cannot be read or is not a list of history events."""


def load_history_file(path: Path) -> list[dict[str, Any]]:
    """A JSON list of events, or an object with a ``history`` list."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HistoryFileError(f"{path}: cannot read a JSON history ({error})") from None
    if isinstance(data, dict):
        data = data.get("history")
    if not isinstance(data, list) or not all(
        isinstance(e, dict) and type(e.get("EventType")) is int for e in data
    ):
        raise HistoryFileError(
            f"{path}: expected a list of history events (with EventType, a number, and EventId)"
        )
    return data


async def run_replay_command(args: argparse.Namespace) -> int:
    """``python -m devhost replay``: prints one line per history; exit 1 if any fails."""
    index = load_app(args.app)
    try:
        histories = [(load_history_file(Path(f)), f) for f in args.files]
    except HistoryFileError as error:
        print(f"error: {error}", file=sys.stderr)  # noqa: T201 - command output
        return 2
    reports = [check_history(index, history, source) for history, source in histories]
    if args.instance or args.all_running:
        reports.extend(await _check_stored(index, args))
    for report in reports:
        mark = "ok  " if report.ok else "FAIL"
        line = f"{mark} {report.orchestrator} {report.instance_id} {report.source}".rstrip()
        print(line)  # noqa: T201 - command output
        if not report.ok:
            print(f"     {report.problem}")  # noqa: T201
    if not reports:
        print("nothing to check: name history files, --instance or --all-running")  # noqa: T201
        return 2
    return 0 if all(r.ok for r in reports) else 1


async def _check_stored(index: FunctionIndex, args: argparse.Namespace) -> list[ReplayReport]:
    from devhost.config import load_config
    from devhost.store.azure import AzureStore
    from devhost.store.base import RUNNING_STATUSES, InstanceQuery

    config = load_config(args.app)
    store = AzureStore(config.storage, config.task_hub, partition_count=config.partition_count)
    await store.open()
    try:
        ids = list(args.instance)
        if args.all_running:
            token: str | None = None
            while True:
                rows, token = await store.query_instances(
                    InstanceQuery(runtime_status=sorted(RUNNING_STATUSES)), 500, token
                )
                ids.extend(r.instance_id for r in rows if not r.name.startswith("@"))
                if not token:
                    break
        reports = []
        for instance_id in ids:
            stored = await store.read_history(instance_id)
            if stored is None or not stored.events:
                reports.append(
                    ReplayReport("storage", instance_id, "?", False, "no history stored")
                )
                continue
            reports.append(check_history(index, stored.events, "storage"))
        return reports
    finally:
        await store.close()
