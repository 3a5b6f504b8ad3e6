"""History events in the shape DurableTask.Core serialises them (protocol notes §2.2).

Events are plain dicts with the DTFx ``[DataMember]`` names, so they go to the SDK, to storage
and to the status API without translation.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from dateutil import parser as date_parser


class EventType(IntEnum):
    """DTFx ``EventType``; the order is a wire contract."""

    ExecutionStarted = 0
    ExecutionCompleted = 1
    ExecutionFailed = 2
    ExecutionTerminated = 3
    TaskScheduled = 4
    TaskCompleted = 5
    TaskFailed = 6
    SubOrchestrationInstanceCreated = 7
    SubOrchestrationInstanceCompleted = 8
    SubOrchestrationInstanceFailed = 9
    TimerCreated = 10
    TimerFired = 11
    OrchestratorStarted = 12
    OrchestratorCompleted = 13
    EventSent = 14
    EventRaised = 15
    ContinueAsNew = 16
    GenericEvent = 17
    HistoryState = 18
    ExecutionSuspended = 19
    ExecutionResumed = 20


class OrchestrationStatus(IntEnum):
    """DTFx ``OrchestrationStatus`` (the status API shows the names)."""

    Running = 0
    Completed = 1
    ContinuedAsNew = 2
    Failed = 3
    Canceled = 4
    Terminated = 5
    Pending = 6
    Suspended = 7


# Events that schedule work and so carry a sequence number in EventId.
SCHEDULING_EVENTS = frozenset(
    {
        EventType.TaskScheduled,
        EventType.TimerCreated,
        EventType.SubOrchestrationInstanceCreated,
        EventType.EventSent,
    }
)


def dotnet_time(value: datetime) -> str:
    """Format like Newtonsoft does a UTC ``DateTime``: up to 7 fractional digits, no trailing
    zeros, ``Z`` suffix. The SDK parses these with dateutil; user code sees a tz-aware value."""
    return _utc_text(value if value.tzinfo is UTC else value.astimezone(UTC))


# The events of an episode share its time: each time is formatted once (``strftime`` was a
# fiftieth of the test host's CPU). The key is a UTC time, so equal keys give equal text.
# ``isoformat`` writes what ``strftime`` would, in a fifth of the CPU, for years from 1000
# (``strftime`` does not pad the others; tests/devhost/test_invoke_timestamps.py).
@functools.lru_cache(maxsize=256)
def _utc_text(value: datetime) -> str:
    if value.year >= 1000:
        text = value.isoformat(timespec="seconds")[:19]
    else:
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}0".rstrip("0")
    return text + "Z"


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (as written by ``dotnet_time`` or the SDK) to aware UTC."""
    try:
        value = datetime.fromisoformat(text)  # fast, and enough for what the host writes
    except ValueError:
        value = date_parser.isoparse(text)
    return as_utc(value)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a time with no zone is taken as UTC (as the stores write it)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def status_time(value: datetime | None) -> str | None:
    """Times in the status API: ``ToString("s") + "Z"``, seconds precision (§7.2)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_event(
    event_type: EventType, timestamp: datetime, event_id: int = -1, **fields: Any
) -> dict:
    """A history event dict with the common fields first, as DTFx orders them."""
    event: dict[str, Any] = {
        "EventType": int(event_type),
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": dotnet_time(timestamp),
    }
    event.update(fields)
    return event


def execution_started(
    timestamp: datetime,
    instance_id: str,
    execution_id: str,
    name: str,
    input_json: str | None,
    parent: dict | None = None,
    generation: int = 0,
) -> dict:
    """``ExecutionStarted``; the SDK requires the ``Version`` key (protocol notes §2.1)."""
    return new_event(
        EventType.ExecutionStarted,
        timestamp,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent,
        Name=name,
        Version="",
        Input=input_json,
        Tags=None,
        Correlation=None,
        ScheduledStartTime=None,
        Generation=generation,
    )
