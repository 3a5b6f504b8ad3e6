"""Documents on the local host as a real process, with Azurite: the convention client's
walkthrough verbatim, and a host killed (kill -9) while a document is half collected."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from e2e_client import request_json, wait_for

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.azurite, pytest.mark.host]

FEEDBACK = ("InterviewFeedback", "BackgroundCheckFeedback", "ContractFeedback")


def _status(url: str) -> Any:
    return request_json("GET", url)[1]


def _at_revision(status_url: str, revision: int) -> Any:
    status = _status(status_url)
    return status if (status.get("customStatus") or {}).get("revision") == revision else None


def test_the_convention_walkthrough_on_the_host(host_factory: Any) -> None:
    host = host_factory(PROJECT, WORKFLOW_STORAGE_PREFIX=f"E{uuid.uuid4().hex[:8]}")
    status, payload = request_json(
        "POST",
        f"{host.base_url}/api/documents",
        {
            "Title": "John Doe Onboarding",
            "CreatedDate": "2022-09-07T00:00:00Z",
            "Creator": "hr-admin",
            "ApplicationId": "COMPANY01",
        },
    )
    assert status == 202, payload
    status_url = payload["statusQueryGetUri"]
    stages: list[str] = []
    for revision, event in enumerate(reversed(FEEDBACK), start=2):  # any order
        url = payload["sendEventPostUri"].replace("{eventName}", event)
        assert request_json("POST", url, {"Feedback": "fine", "IsPassed": True})[0] == 202
        body = wait_for(lambda r=revision: _at_revision(status_url, r))
        stages.append(body["customStatus"]["stage"])
    assert stages == [
        "Contract feedback collected",
        "Background check feedback collected",
        "Awaiting submission",
    ]
    approval = payload["sendEventPostUri"].replace("{eventName}", "SubmissionApproval")
    assert request_json("POST", approval, False)[0] == 202
    final = wait_for(lambda: (s := _status(status_url))["runtimeStatus"] == "Completed" and s)
    assert final["customStatus"]["stage"] == "Submitted document"
    assert final["output"]["decision"]["approved"] is False
    assert len(final["output"]["document"]["sections"]) == 3


def test_a_host_killed_mid_document_loses_nothing(host_factory: Any) -> None:
    host = host_factory(PROJECT, WORKFLOW_STORAGE_PREFIX=f"E{uuid.uuid4().hex[:8]}")
    base = host.base_url
    status, _ = request_json(
        "POST",
        f"{base}/api/documents",
        {"id": "crash-doc", "title": "Crash test", "creator": "hr", "applicationId": "APP"},
    )
    assert status == 202
    patched, body = request_json(
        "PATCH", f"{base}/api/documents/crash-doc", {"properties": {"before": True}}
    )
    assert patched == 200, body
    # Accepted events are in the durable inbox before the call returns: kill right after.
    for event in FEEDBACK[:2]:
        url = f"{base}/api/instances/crash-doc/events/{event}"
        assert request_json("POST", url, {"feedback": "ok", "isPassed": True})[0] == 202
    host.kill()
    host.start()
    base = host.base_url
    wait_for(lambda: request_json("GET", f"{base}/api/documents/crash-doc")[1]["revision"] == 4)
    url = f"{base}/api/instances/crash-doc/events/ContractFeedback"
    assert request_json("POST", url, {"feedback": "signed", "isPassed": True})[0] == 202
    wait_for(
        lambda: request_json("GET", f"{base}/api/documents/crash-doc/status")[1]["state"] == "ready"
    )
    status, body = request_json(
        "POST", f"{base}/api/documents/crash-doc/submit", {"approved": True, "approver": "cto"}
    )
    assert status == 200, body
    document = body["document"]
    assert document["properties"] == {"before": True}
    assert [entry["action"] for entry in document["audit"]] == [
        "created", "patch", "section", "section", "section", "submitted"
    ]  # fmt: skip
    listed = wait_for(
        lambda: request_json("GET", f"{base}/api/documents?state=submitted")[1]["documents"]
    )
    assert [row["id"] for row in listed] == ["crash-doc"]
