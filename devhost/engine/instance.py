"""The in-memory state of one orchestration instance, and its views (row, status object)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from devhost.engine.history import EventType, OrchestrationStatus, parse_time, status_time
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
    # The history rows the store holds besides the sentinel (every execution's), when they
    # are known to be the ordinals below this number: a purge then deletes them by key.
    stored_rows: int | None = None
    # The created time of the instance row the store holds, when known: a listing by created
    # time then leaves out an unwritten instance it could not find (``Checkpointer.checkpoint``).
    stored_created: datetime | None = None
    watermark: str = ""  # msg_id of the newest inbox message applied (stored in the sentinel)
    # An execution the store does not hold yet, as it began: (execution ID, the number of its
    # opening events, the watermark then), a state its first write may store first.
    opening: tuple[str, int, str] | None = None
    consumed: list[StoredMessage] = field(default_factory=list)  # applied, to delete once stored
    # Consumed, stored, and their delete sent in the background but not known to have landed.
    deleting: list[StoredMessage] = field(default_factory=list)
    outbox: list[StoredMessage] = field(default_factory=list)  # to send before the history
    dirty: bool = False
    dirty_since: float = 0.0  # when it last became dirty (time.monotonic)
    rewritten_from: int | None = None  # lowest index rewritten since the last snapshot
    # What others may learn only once the changes recorded so far are stored (a child's end
    # for its parent, an entity's answers for their callers).
    after_stored: list[Callable[[], None]] = field(default_factory=list)
    # Work that starts once the episode that scheduled it is stored: it needs the history
    # stored, not the row (a write for it alone may leave the row for later).
    to_start: list[Callable[[], None]] = field(default_factory=list)
    # The execution and status the instance row names as last written (None: not written by
    # this process).
    stored_row: tuple[str, str] | None = None


@dataclass
class Instance:
    """A running (or recently finished) orchestration instance held by the engine.

    Its fields change through its methods (an execution begins, an episode is recorded, the
    execution ends, a rewind); ``durable`` belongs to the checkpointer, ``inbox`` and
    ``in_ready_queue`` to the scheduler.
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
    # Read from the store, or started from a start message read at recovery: an earlier
    # process may have run its next episodes and started what they scheduled before a crash
    # took them back (a sub-orchestration that may even have ended since).
    recovered: bool = False
    durable: DurableState = field(default_factory=DurableState)
    # The events the last episode's context sent as played, and their JSON text as it sent it
    # (``devhost.engine.orchestration_context.context_json``'s own, a cache of its output).
    played_json: tuple[list[dict[str, Any]], str] = field(
        default_factory=lambda: ([], ""), repr=False
    )
    # The events the last episode's context sent, as the SDK's parse of them made them, and
    # how many of them it sent as played (``orchestration_context.parsed_context``'s own).
    sent_events: tuple[list[dict[str, Any]], list[Mapping[str, Any]], int] = field(
        default_factory=lambda: ([], [], 0), repr=False
    )

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

    def next_generation(
        self,
        execution_id: str,
        input_json: str | None,
        history: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        """Continue as new: the next generation, its opening events already recorded."""
        self.execution_id = execution_id
        self.generation += 1
        self.input = input_json
        self.created = self.updated = now
        self.status = "Running"
        self.history = history

    def end(self, status: str, output: str | None, now: datetime) -> None:
        """The execution ended (completed, failed or terminated)."""
        self.status = status
        self.output = output
        self.completed = self.updated = now
        self.held = []
        # An ended execution runs no more episodes.
        self.played_json = ([], "")
        self.sent_events = ([], [], 0)

    def rewind(self, now: datetime) -> int:
        """Rewrite the failed parts of the history as ``GenericEvent`` rows, as DTFx does.

        Azure Storage's RewindHistoryAsync keeps each row and changes its ``EventType`` to
        GenericEvent with ``Reason`` "Rewound: <type>": every TaskFailed and its TaskScheduled,
        every SubOrchestrationInstanceFailed (its Created row stays: the rewound child reports
        back) and the failed ExecutionCompleted. The replay then schedules the failed work again
        with the same sequence numbers. The instance is Pending until its next episode.
        Returns the index of the first rewritten event.
        """
        failed_tasks = {
            e.get("TaskScheduledId") for e in self.history if e["EventType"] == EventType.TaskFailed
        }
        first_changed = len(self.history)
        for index, event in enumerate(self.history):
            kind = event["EventType"]
            if (
                kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed)
                or (kind == EventType.TaskScheduled and event["EventId"] in failed_tasks)
                or kind == EventType.ExecutionCompleted
            ):
                self.history[index] = {
                    **event,
                    "EventType": int(EventType.GenericEvent),
                    "Reason": f"Rewound: {EventType(kind).name}",
                }
                first_changed = min(first_changed, index)
        self.status = "Pending"
        self.output = None
        self.completed = None
        self.updated = now
        return first_changed


def row_from_history(row: InstanceRow, history: list[dict[str, Any]]) -> InstanceRow:
    """The instance row as a committed history says it is.

    A checkpoint writes the history, then the row (as DTFx does); a crash in between leaves a
    row that is older than the history, whether the execution changed or not. The history is
    the record. Only what the history holds is taken from it; the custom status stays.
    """
    started = next((e for e in history if e["EventType"] == EventType.ExecutionStarted), None)
    if started is None:
        return row
    status, output, completed = "Running", None, None
    for event in history:
        event_type = event["EventType"]
        if event_type == EventType.ExecutionSuspended:
            status = "Suspended"
        elif event_type == EventType.ExecutionResumed:
            status = "Running"
        elif event_type == EventType.ExecutionCompleted:
            status = OrchestrationStatus(event["OrchestrationStatus"]).name
            output, completed = event.get("Result"), parse_time(event["Timestamp"])
    parent = started.get("ParentInstance")
    return replace(
        row,
        name=started["Name"],
        execution_id=started["OrchestrationInstance"]["ExecutionId"],
        runtime_status=status,
        created_time=parse_time(started["Timestamp"]),
        last_updated_time=max(row.last_updated_time, parse_time(history[-1]["Timestamp"])),
        input=started.get("Input"),
        output=output,
        completed_time=completed,
        generation=started.get("Generation") or 0,
        parent_instance_id=parent["OrchestrationInstance"]["InstanceId"] if parent else None,
    )


def instance_from_row(row: InstanceRow) -> Instance:
    return Instance(
        instance_id=row.instance_id,
        name=row.name,
        execution_id=row.execution_id,
        status=row.runtime_status,
        created=row.created_time,
        updated=row.last_updated_time,
        input=row.input,
        output=row.output,
        custom_status=row.custom_status,
        completed=row.completed_time,
        generation=row.generation,
    )


def parent_from_history(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    for event in history[:3]:
        if event["EventType"] == EventType.ExecutionStarted:
            return event.get("ParentInstance")
    return None


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
