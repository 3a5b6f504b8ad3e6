"""Approval chains on the local host as a real process, with Azurite: a walkthrough, and a host
killed while a level's deadline is pending (the deadline still fires, once, after the restart)."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from e2e_client import request_json, wait_for

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.azurite, pytest.mark.host]

LEAD = "lead@example.com"
CFO = "cfo@example.com"
REQUESTER = "sam@example.com"
ESCALATIONS = "escalations@example.com"


def _get(base: str, path: str, **query: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    status, body = request_json("GET", url)
    assert status == 200, body
    return body


def _chain(request_id: str, *levels: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "requestType": "purchase",
        "requesterId": "u-1",
        "requesterEmail": REQUESTER,
        "amount": 12000,
        "description": "Laptops",
        "approvalChain": list(levels),
        **extra,
    }


def _waiting_on(base: str, instance_id: str, level: int) -> dict[str, Any]:
    def check() -> Any:
        custom = _get(base, f"/api/approvals/{instance_id}")["customStatus"] or {}
        ready = custom.get("stage") == "awaiting_decision" and custom.get("currentLevel") == level
        return custom if ready else None

    return dict(wait_for(check, 20, f"level {level} to wait"))


def _final(base: str, instance_id: str, timeout: float = 30) -> dict[str, Any]:
    def check() -> Any:
        view = _get(base, f"/api/approvals/{instance_id}")
        return view if view["runtimeStatus"] == "Completed" else None

    return dict(wait_for(check, timeout, "the chain to complete"))


def test_walkthrough_approve_then_reject(host_factory: Any) -> None:
    """Start, see the inbox, approve level 1, reject level 2 with comments; the requester hears."""
    host = host_factory(PROJECT, WORKFLOW_STORAGE_PREFIX=f"E{uuid.uuid4().hex[:8]}")
    base = host.base_url
    body = _chain(
        "po-77",
        {"level": 1, "approverEmail": LEAD, "timeoutHours": 24},
        {"level": 2, "approverEmail": CFO, "timeoutHours": 48, "autoReject": True},
    )
    status, started = request_json("POST", f"{base}/api/approvals", body)
    assert status == 202, started
    instance_id = started["id"]
    assert started["statusQueryGetUri"]

    _waiting_on(base, instance_id, 1)
    tasks = wait_for(
        lambda: _get(base, "/api/approvals", approver=LEAD, status="pending")["tasks"], 10, "inbox"
    )
    assert [task["instanceId"] for task in tasks] == [instance_id]
    decision_uri = f"{base}{tasks[0]['decisionUri']}"
    assert request_json("POST", decision_uri, {"approved": True, "approverEmail": CFO})[0] == 403
    assert request_json("POST", decision_uri, {"approved": True, "approverEmail": LEAD})[0] == 200

    _waiting_on(base, instance_id, 2)
    level2 = f"{base}/api/approvals/{instance_id}/levels/2"
    assert request_json("POST", level2, {"approved": False, "approverEmail": CFO})[0] == 400
    rejection = {"approved": False, "approverEmail": CFO, "comments": "Next quarter"}
    assert request_json("POST", level2, rejection)[0] == 200

    output = _final(base, instance_id)["output"]
    assert output["finalStatus"] == "rejected"
    assert [d["outcome"] for d in output["decisions"]] == ["approved", "rejected"]
    told = _get(base, "/api/notifications", recipient=REQUESTER)["notifications"]
    assert [n["category"] for n in told] == ["approval_result"]


def test_a_deadline_pending_across_a_host_kill_fires_once(host_factory: Any) -> None:
    """kill -9 while a 3.6-second deadline is pending; after the restart it fires exactly once."""
    host = host_factory(PROJECT, WORKFLOW_STORAGE_PREFIX=f"E{uuid.uuid4().hex[:8]}")
    base = host.base_url
    body = _chain(
        "po-78",
        # 0.001 h = 3.6 s on the real clock; a lead as long as that leaves out the reminder.
        {"level": 1, "approverEmail": LEAD, "timeoutHours": 0.001, "reminderLeadHours": 1},
        escalationEmail=ESCALATIONS,
    )
    status, started = request_json("POST", f"{base}/api/approvals", body)
    assert status == 202, started
    instance_id = started["id"]
    history_url = f"{started['statusQueryGetUri'].split('?')[0]}?showHistory=true"

    def timer_created() -> bool:
        events = request_json("GET", history_url)[1].get("historyEvents") or []
        return any(event["EventType"] == "TimerCreated" for event in events)

    wait_for(timer_created, 20, "the deadline timer to be created")
    deadline = datetime.fromisoformat(_waiting_on(base, instance_id, 1)["deadline"])
    host.kill()
    # Stay down until the deadline has passed, so the timer is overdue when the host returns.
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.2)
    host.start()

    output = _final(base, instance_id)["output"]
    assert output["finalStatus"] == "timeout"
    assert [(d["outcome"], d["approverEmail"]) for d in output["decisions"]] == [
        ("escalated", "system")
    ]
    escalations = _get(base, "/api/notifications", recipient=ESCALATIONS)["notifications"]
    assert [n["notificationId"] for n in escalations] == [f"{instance_id}:level1:escalation"]
    events = request_json("GET", history_url)[1]["historyEvents"]
    assert sum(1 for event in events if event["EventType"] == "TimerFired") == 1
    [row] = _get(base, "/api/approvals", approver=LEAD)["tasks"]
    assert row["status"] == "escalated"
