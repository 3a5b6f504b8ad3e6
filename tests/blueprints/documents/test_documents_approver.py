"""The approver's side of a document: told when it is ready, and an early decision kept."""

import asyncio
from typing import Any

from documents_client import SECTIONS, create_document, eventually, get_json

from devhost.testing import DurableTestHost

FEEDBACK = {
    "InterviewFeedback": "interviewFeedback",
    "BackgroundCheckFeedback": "backgroundCheckFeedback",
    "ContractFeedback": "contractFeedback",
}


async def _ready_notices(http: Any, recipient: str) -> list[dict[str, Any]]:
    body = await get_json(
        http, f"/api/notifications?recipient={recipient}&category=document_ready&top=500"
    )
    return list(body["notifications"])


async def test_the_approver_is_told_once_each_time_the_document_becomes_ready(
    host: DurableTestHost, http: Any
) -> None:
    document_id = await create_document(http, id="ready-1", approver="manager@example.com")
    for event, key in FEEDBACK.items():
        await host.raise_event(document_id, event, SECTIONS[key], as_client=False)
    await eventually(
        lambda: get_json(http, f"/api/documents/{document_id}/status"),
        lambda body: body["state"] == "ready",
        30,
    )
    # A correction of a section while ready tells nobody again.
    fix = {"sections": {"contractFeedback": {"feedback": "Signed, dated"}}}
    assert (await http.patch(f"/api/documents/{document_id}", json=fix)).status == 200
    [notice] = await eventually(
        lambda: _ready_notices(http, "manager@example.com"), lambda rows: len(rows) == 1, 30
    )
    assert notice["notificationId"] == f"{document_id}:ready:1"
    assert notice["link"] == f"/api/documents/{document_id}/submit"
    assert notice["instanceId"] == document_id

    # Not ready any more, then ready again: a second notice.
    gone = {"sections": {"contractFeedback": None}}
    assert (await http.patch(f"/api/documents/{document_id}", json=gone)).status == 200
    back = {"sections": {"contractFeedback": SECTIONS["contractFeedback"]}}
    assert (await http.patch(f"/api/documents/{document_id}", json=back)).status == 200
    notices = await eventually(
        lambda: _ready_notices(http, "manager@example.com"), lambda rows: len(rows) == 2, 30
    )
    assert sorted(n["notificationId"] for n in notices) == [
        f"{document_id}:ready:1",
        f"{document_id}:ready:2",
    ]


async def test_without_a_named_approver_the_approvers_role_is_told(
    host: DurableTestHost, http: Any
) -> None:
    document_id = await create_document(http, id="ready-2")
    patch = {"sections": SECTIONS}
    assert (await http.patch(f"/api/documents/{document_id}", json=patch)).status == 200
    [notice] = await eventually(
        lambda: _ready_notices(http, "document-approvers"), lambda rows: len(rows) == 1, 30
    )
    assert notice["instanceId"] == document_id


async def test_an_approval_sent_with_the_feedback_is_applied_when_the_document_is_complete(
    host: DurableTestHost, http: Any
) -> None:
    """20 documents; each gets its SubmissionApproval first, then its three sections, all at
    once: every one ends submitted with the approver's decision."""
    ids = [await create_document(http, id=f"early-{n:02}") for n in range(20)]

    async def feed(document_id: str, approved: bool) -> None:
        decision = {"approved": approved, "approver": "ana", "comments": "pre-approved"}
        await host.raise_event(document_id, "SubmissionApproval", decision, as_client=False)
        await asyncio.gather(
            *(
                host.raise_event(document_id, event, SECTIONS[key], as_client=False)
                for event, key in FEEDBACK.items()
            )
        )

    await asyncio.gather(*(feed(doc, n % 4 != 0) for n, doc in enumerate(ids)))
    for n, document_id in enumerate(ids):
        body = await eventually(
            lambda document_id=document_id: get_json(http, f"/api/documents/{document_id}"),
            lambda body: body["state"] != "collecting" and body["runtimeStatus"] != "Running",
            timeout=30,
        )
        assert body["state"] == "submitted", body["state"]
        assert body["decision"]["approved"] is (n % 4 != 0)
        assert body["decision"]["approver"] == "ana"
        assert [e["action"] for e in body["audit"]][-1] == "submitted"
        assert "approval_kept" in [e["action"] for e in body["audit"]]
