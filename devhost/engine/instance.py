"""The in-memory state of one orchestration instance, and its views (row, status object)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devhost.engine.history import EventType, OrchestrationStatus, status_time
from devhost.store.base import TERMINAL_STATUSES, InstanceRow, StoredMessage


@dataclass
class Pending:
    """An event waiting to be processed, with the durable message it came from (if any)."""

    event: dict[str, Any]
    message: StoredMessage | None = None


@dataclass
class DurableState:
    """What the store holds of one instance, and what its next checkpoint must add.

    Written only by ``devhost.engine.checkpointer.Checkpointer`` (the one place where the
    order of durable writes is decided); everyone else reads it.
    """

    persisted_count: int = 0  # events of ``stored_execution`` already in the store
    stored_execution: str = ""  # the execution whose history the store holds
    watermark: str = ""  # msg_id of the newest inbox message applied (stored in the sentinel)
    consumed: list[StoredMessage] = field(default_factory=list)  # applied, to delete once stored
    outbox: list[StoredMessage] = field(default_factory=list)  # to send before the history
    dirty: bool = False
    dirty_since: float = 0.0  # when it last became dirty (time.monotonic)
    rewritten_from: int | None = None  # lowest index rewritten since the last snapshot


@dataclass
class Instance:
    """A running (or recently finished) orchestration instance held by the engine.

    ``durable`` belongs to the checkpointer, ``inbox`` and ``in_ready_queue`` to the scheduler.
    """

    instance_id: str
    name: str
    execution_id: str
    status: str
    created: datetime
    updated: datetime
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    completed: datetime | None = None
    parent: dict[str, Any] | None = None  # ParentInstance of ExecutionStarted
    generation: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    inbox: list[Pending] = field(default_factory=list)
    held: list[Pending] = field(default_factory=list)  # events that arrived while suspended
    in_ready_queue: bool = False
    durable: DurableState = field(default_factory=DurableState)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def parent_instance_id(self) -> str | None:
        if not self.parent:
            return None
        return self.parent["OrchestrationInstance"]["InstanceId"]

    def row(self) -> InstanceRow:
        return InstanceRow(
            instance_id=self.instance_id,
            name=self.name,
            execution_id=self.execution_id,
            runtime_status=self.status,
            created_time=self.created,
            last_updated_time=self.updated,
            input=self.input,
            output=self.output,
            custom_status=self.custom_status,
            completed_time=self.completed,
            generation=self.generation,
            parent_instance_id=self.parent_instance_id,
        )

    def begin_execution(
        self,
        name: str,
        execution_id: str,
        input_json: str | None,
        now: datetime,
        parent: dict[str, Any] | None = None,
    ) -> list[Pending]:
        """Start over as a new execution (a start, a restart); returns what the inbox held."""
        self.name = name
        self.execution_id = execution_id
        self.status = "Pending"
        self.created = self.updated = now
        self.input = input_json
        self.output = self.custom_status = self.completed = None
        self.parent = parent
        self.generation = 0
        self.history = []
        self.held = []
        dropped, self.inbox = self.inbox, []
        return dropped


def parse_stored_json(text: str | None) -> Any:
    """Stored text parsed as JSON; the raw string when it is not JSON (§7.2)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


def status_object(
    row: InstanceRow,
    *,
    show_input: bool = True,
    history: list[dict[str, Any]] | None = None,
    show_history_output: bool = False,
) -> dict[str, Any]:
    """The status payload of the management API (§7.2)."""
    status: dict[str, Any] = {
        "name": row.name,
        "instanceId": row.instance_id,
        "runtimeStatus": row.runtime_status,
        "input": parse_stored_json(row.input) if show_input else None,
        "customStatus": parse_stored_json(row.custom_status),
        "output": parse_stored_json(row.output),
        "createdTime": status_time(row.created_time),
        "lastUpdatedTime": status_time(row.last_updated_time),
    }
    if history is not None and row.runtime_status != "Pending":
        status["historyEvents"] = history_for_status(history, show_input, show_history_output)
    return status


_FOLDED = {EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated}
_DROPPED = {EventType.OrchestratorStarted, EventType.OrchestratorCompleted}


def history_for_status(
    history: list[dict[str, Any]], show_input: bool, show_output: bool
) -> list[dict[str, Any]]:
    """History as ``showHistory=true`` returns it (DurableClient, GetDurableOrchestrationStatus):
    event types as names, scheduling rows folded into their completions, ids removed."""
    scheduled: dict[int, dict[str, Any]] = {
        e["EventId"]: e for e in history if e["EventType"] in _FOLDED
    }
    result: list[dict[str, Any]] = []
    for event in history:
        event_type = EventType(event["EventType"])
        if event_type in _DROPPED or event_type in _FOLDED:
            continue
        item = {k: v for k, v in event.items() if k not in ("EventId", "IsPlayed")}
        item["EventType"] = event_type.name
        if event_type == EventType.ExecutionStarted:
            item["FunctionName"] = item.pop("Name", None)
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                item.pop(key, None)
        source_id = item.pop("TaskScheduledId", None)
        if source_id is not None and source_id in scheduled:
            origin = scheduled[source_id]
            item["ScheduledTime"] = origin["Timestamp"]
            item["FunctionName"] = origin.get("Name")
            if show_input and origin.get("Input") is not None:
                item["Input"] = parse_stored_json(origin.get("Input"))
        item.pop("TimerId", None)
        if "OrchestrationStatus" in item:
            item["OrchestrationStatus"] = OrchestrationStatus(item["OrchestrationStatus"]).name
        if "Result" in item:
            if show_output:
                item["Result"] = parse_stored_json(item["Result"])
            else:
                del item["Result"]
        if "Input" in item:
            if show_input:
                item["Input"] = parse_stored_json(item["Input"])
            else:
                del item["Input"]
        result.append(item)
    return result
