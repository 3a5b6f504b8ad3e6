"""An orchestration's history as a timeline: work as bars over time, everything else as marks.

Reads the history events in DurableTask's own shape (``EventType`` numbers, ``EventId`` as the
sequence number of scheduling events, ``TaskScheduledId``/``TimerId`` on their results), as the
store returns them for this host's hubs and for hubs written by the real extension.

Bars: activities (``TaskScheduled`` to ``TaskCompleted``/``TaskFailed``), timers
(``TimerCreated`` to ``TimerFired``), sub-orchestrations (linked to the child) and entity
calls (``EventSent`` to an ``@name@key`` instance, answered by the ``EventRaised`` named by the
request ID). An activity scheduled again after its previous attempt failed is a retry: its
bar says which attempt it is. Marks: start, end, raised and sent events, suspend, resume,
continue-as-new, rewind.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from devhost.store.base import RUNTIME_STATUS_NAMES

# DurableTask.Core EventType numbers (a wire contract).
EXECUTION_STARTED = 0
EXECUTION_COMPLETED = 1
EXECUTION_FAILED = 2
EXECUTION_TERMINATED = 3
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
SUB_CREATED = 7
SUB_COMPLETED = 8
SUB_FAILED = 9
TIMER_CREATED = 10
TIMER_FIRED = 11
EVENT_SENT = 14
EVENT_RAISED = 15
CONTINUE_AS_NEW = 16
GENERIC = 17
SUSPENDED = 19
RESUMED = 20

_DETAIL_LIMIT = 4000


@dataclass
class Bar:
    """A piece of work with a start and (once finished) an end."""

    kind: str  # activity | timer | suborchestration | entity
    name: str
    start: str
    end: str | None = None
    outcome: str = "running"  # running | completed | failed
    attempt: int = 1
    detail: str | None = None
    child_instance_id: str | None = None


@dataclass
class Mark:
    """Something that happened at one moment."""

    kind: str  # started | completed | failed | terminated | event | sent | suspended | ...
    name: str
    at: str
    detail: str | None = None


@dataclass
class Timeline:
    """What the instance page draws."""

    start: str | None
    end: str | None
    bars: list[Bar] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    parent_instance_id: str | None = None
    children: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _time(event: dict[str, Any]) -> str:
    """The event's timestamp as ISO-8601 UTC (what the page positions by)."""
    raw = event.get("Timestamp")
    if isinstance(raw, datetime):
        value = raw
    else:
        try:
            value = datetime.fromisoformat(str(raw))
        except ValueError:
            return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _text(value: Any) -> str | None:
    """A detail for a person: JSON text decoded once, cut to a readable length."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
            value = decoded if isinstance(decoded, str) else value
        except ValueError:
            pass
    else:
        value = json.dumps(value, ensure_ascii=False)
    return str(value)[:_DETAIL_LIMIT]


def _failure(event: dict[str, Any]) -> str | None:
    details = event.get("FailureDetails")
    if isinstance(details, dict):
        message = details.get("ErrorMessage") or details.get("errorMessage")
        if message:
            return _text(message)
    parts = [_text(event.get("Reason")), _text(event.get("Details"))]
    return "\n".join(part for part in parts if part) or _text(event.get("Result"))


def _entity_request(event: dict[str, Any]) -> tuple[str | None, str]:
    """The request ID of an entity call (None for a signal, which nobody answers) and the
    operation's name (``op``, as both this host and DurableTask write the request)."""
    try:
        request = json.loads(event.get("Input") or "null")
    except (TypeError, ValueError):
        return None, ""
    if not isinstance(request, dict):
        return None, ""
    operation = str(request.get("op") or request.get("operation") or "")
    if request.get("signal") or request.get("isSignal"):
        return None, operation
    request_id = request.get("id")
    return (str(request_id) if request_id else None), operation


def build_timeline(events: list[dict[str, Any]], parent_instance_id: str | None = None) -> Timeline:
    """Turn one execution's history events into bars and marks.

    Parameters
    ----------
    events : list[dict]
        History events, oldest first, with DurableTask's field names.
    parent_instance_id : str | None
        The parent from the instance row, when the history does not name it.

    Returns
    -------
    Timeline
        Bars in the order their work was scheduled; marks in history order.
    """
    timeline = Timeline(start=None, end=None, parent_instance_id=parent_instance_id)
    open_bars: dict[int, Bar] = {}
    calls: dict[str, Bar] = {}
    last_by_name: dict[tuple[str, str], Bar] = {}

    def add_bar(seq: Any, bar: Bar) -> None:
        previous = last_by_name.get((bar.kind, bar.name))
        if previous is not None and previous.outcome == "failed":
            bar.attempt = previous.attempt + 1
        last_by_name[(bar.kind, bar.name)] = bar
        timeline.bars.append(bar)
        if isinstance(seq, int):
            open_bars[seq] = bar

    def close_bar(seq: Any, at: str, outcome: str, detail: str | None) -> None:
        bar = open_bars.pop(seq, None) if isinstance(seq, int) else None
        if bar is not None:
            bar.end, bar.outcome = at, outcome
            bar.detail = detail or bar.detail

    for event in events:
        kind, at = event.get("EventType"), _time(event)
        if not at:
            continue
        timeline.start = timeline.start or at
        timeline.end = at
        seq = event.get("EventId")
        if kind == EXECUTION_STARTED:
            parent = event.get("ParentInstance") or {}
            parent_id = (parent.get("OrchestrationInstance") or {}).get("InstanceId")
            timeline.parent_instance_id = parent_id or timeline.parent_instance_id
            timeline.marks.append(Mark("started", str(event.get("Name") or ""), at))
        elif kind == TASK_SCHEDULED:
            add_bar(seq, Bar("activity", str(event.get("Name") or ""), at))
        elif kind == TASK_COMPLETED:
            close_bar(event.get("TaskScheduledId"), at, "completed", None)
        elif kind == TASK_FAILED:
            close_bar(event.get("TaskScheduledId"), at, "failed", _failure(event))
        elif kind == TIMER_CREATED:
            add_bar(seq, Bar("timer", "timer", at, detail=f"fires at {event.get('FireAt')}"))
        elif kind == TIMER_FIRED:
            close_bar(event.get("TimerId"), at, "completed", None)
        elif kind == SUB_CREATED:
            child = str(event.get("InstanceId") or "")
            timeline.children.append(child)
            add_bar(
                seq,
                Bar("suborchestration", str(event.get("Name") or ""), at, child_instance_id=child),
            )
        elif kind == SUB_COMPLETED:
            close_bar(event.get("TaskScheduledId"), at, "completed", None)
        elif kind == SUB_FAILED:
            close_bar(event.get("TaskScheduledId"), at, "failed", _failure(event))
        elif kind == EVENT_SENT:
            target = str(event.get("InstanceId") or "")
            request_id, operation = _entity_request(event) if target.startswith("@") else (None, "")
            name = f"{target} {operation or event.get('Name') or ''}".strip()
            if request_id is not None:
                bar = Bar("entity", name, at)
                timeline.bars.append(bar)
                calls[request_id] = bar
            else:
                timeline.marks.append(Mark("sent", name, at))
        elif kind == EVENT_RAISED:
            name = str(event.get("Name") or "")
            call = calls.pop(name, None)
            if call is not None:
                call.end, call.outcome = at, "completed"
            else:
                timeline.marks.append(Mark("event", name, at, _text(event.get("Input"))))
        elif kind in (EXECUTION_COMPLETED, EXECUTION_FAILED):
            status = event.get("OrchestrationStatus")
            name = (
                RUNTIME_STATUS_NAMES[status]
                if isinstance(status, int) and 0 <= status < len(RUNTIME_STATUS_NAMES)
                else ""
            )
            failed = kind == EXECUTION_FAILED or name == "Failed"
            detail = _failure(event) if failed else _text(event.get("Result"))
            timeline.marks.append(Mark("failed" if failed else "completed", name, at, detail))
        elif kind == EXECUTION_TERMINATED:
            timeline.marks.append(Mark("terminated", "", at, _text(event.get("Input"))))
        elif kind == CONTINUE_AS_NEW:
            timeline.marks.append(Mark("continued", "continue as new", at))
        elif kind == SUSPENDED:
            timeline.marks.append(Mark("suspended", "", at, _text(event.get("Reason"))))
        elif kind == RESUMED:
            timeline.marks.append(Mark("resumed", "", at, _text(event.get("Reason"))))
        elif kind == GENERIC:
            reason = event.get("Reason") or event.get("Data")
            timeline.marks.append(Mark("rewound", str(reason or "")[:200], at))
    return timeline
