"""The client walkthrough of the issue, verbatim: a client that knows only the Durable Functions
conventions creates a document, raises the feedback events through ``sendEventPostUri``, polls
``statusQueryGetUri`` and submits, with PascalCase bodies."""

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest

from devhost.testing import DurableTestHost

# Run once with a connection string and once identity-based (a token, no account key).
pytestmark = pytest.mark.both_storage_paths

FEEDBACK_EVENTS = {
    "InterviewFeedback": "Interview feedback collected",
    "BackgroundCheckFeedback": "Background check feedback collected",
    "ContractFeedback": "Contract feedback collected",
}


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def _poll(http: Any, url: str, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await http.get(_path(url))
        body = await response.json()
        if predicate(body):
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.01)


async def test_the_convention_client_walkthrough_works_unchanged(
    host: DurableTestHost, http: Any
) -> None:
    created = await http.post(
        "/api/documents",
        json={
            "Title": "John Doe Onboarding",
            "CreatedDate": "2022-09-07T00:00:00Z",
            "Creator": "hr-admin",
            "ApplicationId": "COMPANY01",
        },
    )
    assert created.status == 202
    payload = await created.json()
    assert {"id", "statusQueryGetUri", "sendEventPostUri"} <= payload.keys()
    status_url = payload["statusQueryGetUri"]
    first = await _poll(http, status_url, lambda body: body.get("customStatus"))
    assert first["customStatus"]["stage"] == "Waiting for feedback"

    stages = []
    for event_name, stage in FEEDBACK_EVENTS.items():
        url = payload["sendEventPostUri"].replace("{eventName}", event_name)
        raised = await http.post(
            _path(url), json={"Feedback": f"{event_name} looks good", "IsPassed": True}
        )
        assert raised.status == 202
        expected = "Awaiting submission" if event_name == "ContractFeedback" else stage
        body = await _poll(
            http, status_url, lambda body, s=expected: body["customStatus"]["stage"] == s
        )
        stages.append(body["customStatus"]["stage"])
    assert stages == [
        "Interview feedback collected",
        "Background check feedback collected",
        "Awaiting submission",
    ]

    approval = payload["sendEventPostUri"].replace("{eventName}", "SubmissionApproval")
    assert (await http.post(_path(approval), json=True)).status == 202
    final = await _poll(http, status_url, lambda body: body["runtimeStatus"] == "Completed")
    assert final["customStatus"]["stage"] == "Submitted document"
    output = final["output"]
    assert output["decision"]["approved"] is True
    document = output["document"]
    assert document["title"] == "John Doe Onboarding"
    assert document["applicationId"] == "COMPANY01"
    assert set(document["sections"]) == {
        "interviewFeedback",
        "backgroundCheckFeedback",
        "contractFeedback",
    }
    assert document["sections"]["contractFeedback"]["feedback"] == "ContractFeedback looks good"
    assert document["sections"]["interviewFeedback"]["via"] == "InterviewFeedback"
