"""The chaos run's invariant checks catch what they are for (on made-up storage contents)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devhost.engine.history import EventType
from devhost.store.base import InstanceRow, StoredHistory

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from chaos_invariants import (  # noqa: E402
    Storage,
    acknowledged_events,
    acknowledged_starts,
    one_start_per_execution,
    rows_agree_with_histories,
)
from chaos_workflows import Workflow  # noqa: E402

NOW = datetime(2024, 5, 1, tzinfo=UTC)
DONE_AT = NOW.timestamp()  # when DONE says the execution ended


def _row(
    instance_id: str, status: str, output: Any = None, execution: str = "e1", text: str = ""
) -> InstanceRow:
    stored = text or (None if output is None else json.dumps(output))
    return InstanceRow(instance_id, "x", execution, status, NOW, NOW, output=stored)


def _event(kind: EventType, **fields: Any) -> dict[str, Any]:
    return {"EventType": int(kind), "EventId": -1, "Timestamp": "2024-05-01T00:00:00Z", **fields}


def _history(*events: dict[str, Any], execution: str = "e1") -> StoredHistory:
    return StoredHistory(execution, list(events))


def _storage(rows: list[InstanceRow], histories: dict[str, StoredHistory | None]) -> Storage:
    storage = Storage(store=None)  # type: ignore[arg-type]
    storage.rows = {row.instance_id: row for row in rows}
    storage.histories = histories
    return storage


STARTED = _event(EventType.ExecutionStarted, Name="x")
DONE = _event(EventType.ExecutionCompleted, OrchestrationStatus=1, Result='"ok"')


def test_an_acknowledged_start_missing_or_unfinished_is_reported() -> None:
    storage = _storage([_row("a", "Completed"), _row("b", "Running")], {})
    workflows = [
        Workflow("order", "a", "", started=True, finished=True),
        Workflow("order", "b", "", started=True),
        Workflow("order", "c", "", started=True),
        Workflow("order", "d", "", started=False),  # never acknowledged: nothing promised
    ]
    broken = acknowledged_starts(storage, workflows)
    assert [problem.split(":")[0] for problem in broken] == ["b", "c"]


def test_an_acknowledged_event_missing_from_history_or_audit_is_reported() -> None:
    raised = _event(EventType.EventRaised, Name="CancelOrder")
    audit = [{"action": "section", "fields": ["sections.interviewFeedback"]}]
    storage = _storage(
        [_row("o", "Completed"), _row("d", "Completed", {"document": {"audit": audit}})],
        {"o": _history(STARTED, raised, DONE)},
    )
    after_it_ended = DONE_AT + 1
    workflows = [
        Workflow(
            "order",
            "o",
            "",
            events=[("CancelOrder", "", 0.0), ("ManagerApproval", "", DONE_AT - 5)],
        ),
        Workflow(
            "document",
            "d",
            "",
            events=[("InterviewFeedback", "section", 0.0), ("ContractFeedback", "section", 0.0)],
        ),
    ]
    assert acknowledged_events(storage, workflows) == [
        "o: acknowledged ManagerApproval not in its history",
        "d: ContractFeedback not applied",
    ]
    assert storage.raced == []

    # An event acknowledged as its instance ended was dropped with the instance, not lost.
    workflows[0].events[1] = ("ManagerApproval", "", after_it_ended)
    assert acknowledged_events(storage, workflows) == ["d: ContractFeedback not applied"]
    assert storage.raced == ["o: ManagerApproval"]


def test_two_execution_started_in_one_execution_are_reported() -> None:
    storage = _storage(
        [_row("a", "Completed"), _row("b", "Completed")],
        {"a": _history(STARTED, DONE), "b": _history(STARTED, STARTED, DONE)},
    )
    assert one_start_per_execution(storage) == ["b: 2 ExecutionStarted in execution"]


def test_a_row_that_disagrees_with_its_history_is_reported() -> None:
    failed = _event(EventType.ExecutionCompleted, OrchestrationStatus=3, Result='"boom"')
    crashed_text = "Orchestrator function 'x' failed: KeyError: 'result'"  # not JSON
    crashed = _event(EventType.ExecutionCompleted, OrchestrationStatus=3, Result=crashed_text)
    storage = _storage(
        [
            _row("fine", "Completed", "ok"),
            _row("crashed", "Failed", text=crashed_text),
            _row("torn", "Running"),  # the history ended, the row write was lost
            _row("status", "Completed", "boom"),
            _row("output", "Completed", "other"),
            _row("execution", "Completed", "ok", execution="e0"),
            _row("pending", "Pending"),
        ],
        {
            "fine": _history(STARTED, DONE),
            "crashed": _history(STARTED, crashed),
            "torn": _history(STARTED, DONE),
            "status": _history(STARTED, failed),
            "output": _history(STARTED, DONE),
            "execution": _history(STARTED, DONE),
            "pending": None,
        },
    )
    broken = rows_agree_with_histories(storage)
    assert [problem.split(":")[0] for problem in broken] == [
        "torn",
        "status",
        "output",
        "execution",
        "pending",
    ]
