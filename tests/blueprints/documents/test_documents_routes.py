"""The friendly routes: create, read, patch with If-Match, submit, cancel, status, errors."""

from typing import Any

import pytest
from documents_client import SECTIONS, create_document, document_fields, eventually, get_json

from devhost.testing import DurableTestHost

# Run once with a connection string and once identity-based (a token, no account key).
pytestmark = pytest.mark.both_storage_paths


async def test_create_with_a_chosen_id_then_read_it(http: Any) -> None:
    document_id = await create_document(
        http, id="onboarding-jdoe", properties={"department": "R&D"}
    )
    assert document_id == "onboarding-jdoe"
    body = await get_json(http, "/api/documents/onboarding-jdoe")
    assert body["_status"] == 200
    assert body["revision"] == 1
    assert body["state"] == "collecting"
    assert body["properties"] == {"department": "R&D"}
    assert body["missingSections"] == list(SECTIONS)
    assert body["audit"][0]["action"] == "created"

    again = await http.post("/api/documents", json=document_fields(id="onboarding-jdoe"))
    assert again.status == 409
    bad = await http.post("/api/documents", json=document_fields(id="no/slash", title=""))
    assert bad.status == 400
    fields = {detail["field"] for detail in (await bad.json())["error"]["details"]}
    assert fields == {"id", "title"}
    assert (await http.get("/api/documents/nobody")).status == 404


async def test_patch_answers_the_new_revision_and_412_when_stale(http: Any) -> None:
    document_id = await create_document(http)
    patched = await http.patch(
        f"/api/documents/{document_id}",
        json={"title": "Jane Doe Onboarding", "properties": {"team": "Platform"}},
        headers={"If-Match": '"1"'},
    )
    assert patched.status == 200, await patched.text()
    body = await patched.json()
    assert body["revision"] == 2
    assert patched.headers["ETag"] == '"2"'
    assert body["document"]["title"] == "Jane Doe Onboarding"

    stale = await http.patch(
        f"/api/documents/{document_id}", json={"title": "Old"}, headers={"If-Match": "1"}
    )
    assert stale.status == 412
    assert stale.headers["ETag"] == '"2"'

    removed = await http.patch(f"/api/documents/{document_id}", json={"properties": {"team": None}})
    assert (await removed.json())["document"]["properties"] == {}


async def test_bad_patches_are_400_naming_the_fields(http: Any) -> None:
    document_id = await create_document(http)
    unknown = await http.patch(f"/api/documents/{document_id}", json={"creator": "me"})
    assert unknown.status == 400
    assert (await unknown.json())["error"]["details"][0]["field"] == "creator"
    section = await http.patch(
        f"/api/documents/{document_id}",
        json={"sections": {"interviewFeedback": {"feedback": "ok"}, "lunch": {}}},
    )
    assert section.status == 400
    fields = {detail["field"] for detail in (await section.json())["error"]["details"]}
    assert fields == {"sections.interviewFeedback.isPassed", "sections.lunch"}


async def test_a_listing_time_outside_the_utc_range_is_400_naming_it(http: Any) -> None:
    for name, edge in (
        ("createdFrom", "0001-01-01T00:00:00+01:00"),
        ("createdTo", "9999-12-31T23:59:59-01:00"),
    ):
        listed = await http.get("/api/documents", params={name: edge})
        assert listed.status == 400
        assert [d["field"] for d in (await listed.json())["error"]["details"]] == [name]


async def test_a_created_date_outside_the_utc_range_is_400_naming_it(http: Any) -> None:
    # It was accepted, and then every write of the document's read-model row failed converting
    # it to UTC: the document never appeared in GET /api/documents.
    created = await http.post(
        "/api/documents", json=document_fields(createdDate="9999-12-31T23:59:59-01:00")
    )
    assert created.status == 400
    assert [d["field"] for d in (await created.json())["error"]["details"]] == ["createdDate"]


async def test_submit_names_missing_sections_then_closes_the_document(http: Any) -> None:
    document_id = await create_document(http)
    incomplete = await http.post(
        f"/api/documents/{document_id}/submit", json={"approved": True, "approver": "cto"}
    )
    assert incomplete.status == 409
    details = (await incomplete.json())["error"]["details"]
    assert [detail["field"] for detail in details] == [f"sections.{key}" for key in SECTIONS]

    # Sections through a patch, in snake_case and PascalCase, then corrected before submission.
    patch = {
        "sections": {
            "interview_feedback": {"feedback": "Weak", "is_passed": False},
            "BackgroundCheckFeedback": SECTIONS["backgroundCheckFeedback"],
            "contractFeedback": SECTIONS["contractFeedback"],
        }
    }
    assert (await http.patch(f"/api/documents/{document_id}", json=patch)).status == 200
    corrected = await http.patch(
        f"/api/documents/{document_id}",
        json={"sections": {"interviewFeedback": {"feedback": "Strong", "isPassed": True}}},
    )
    assert (await corrected.json())["document"]["stage"] == "Awaiting submission"

    submitted = await http.post(
        f"/api/documents/{document_id}/submit",
        json={"approved": False, "approver": "cto", "comments": "budget freeze"},
    )
    assert submitted.status == 200, await submitted.text()
    document = (await submitted.json())["document"]
    assert document["state"] == "submitted"
    assert document["decision"]["approved"] is False
    assert document["sections"]["interviewFeedback"]["feedback"] == "Strong"
    actions = [entry["action"] for entry in document["audit"]]
    assert actions == ["created", "patch", "patch", "submitted"]

    late = await http.patch(f"/api/documents/{document_id}", json={"title": "Too late"})
    assert late.status == 409
    assert (await late.json())["error"]["code"] == "DocumentClosed"
    status = await get_json(http, f"/api/documents/{document_id}/status")
    assert (status["state"], status["stage"]) == ("submitted", "Submitted document")


async def test_the_same_request_id_is_applied_once(http: Any) -> None:
    document_id = await create_document(http)
    headers = {"Idempotency-Key": "req-42"}
    first = await http.patch(
        f"/api/documents/{document_id}", json={"properties": {"n": 1}}, headers=headers
    )
    second = await http.patch(
        f"/api/documents/{document_id}", json={"properties": {"n": 1}}, headers=headers
    )
    assert (first.status, second.status) == (200, 200)
    assert (await first.json())["revision"] == (await second.json())["revision"] == 2
    body = await get_json(http, f"/api/documents/{document_id}")
    assert body["revision"] == 2
    assert [entry["requestId"] for entry in body["audit"][1:]] == ["req-42"]


async def test_a_key_reused_for_another_change_answers_422(http: Any) -> None:
    """Same key and patch: the same answer. Same key, another patch or another action: 422
    naming Idempotency-Key, and the document keeps the change the key made."""
    document_id = await create_document(http)
    uri = f"/api/documents/{document_id}"
    headers = {"Idempotency-Key": "req-7"}
    first = await http.patch(uri, json={"properties": {"n": 1}}, headers=headers)
    again = await http.patch(uri, json={"properties": {"n": 1}}, headers=headers)
    assert (first.status, again.status) == (200, 200)
    assert (await first.json())["revision"] == (await again.json())["revision"] == 2

    for reused in (
        await http.patch(uri, json={"properties": {"n": 2}}, headers=headers),
        await http.post(f"{uri}/cancel", json={"reason": "dup"}, headers=headers),
    ):
        assert reused.status == 422
        error = (await reused.json())["error"]
        assert error["code"] == "IdempotencyKeyReused"
        assert error["details"] == [
            {"field": "Idempotency-Key", "code": "key_reused", "message": "differs in payload"}
        ]
    body = await get_json(http, uri)
    assert (body["revision"], body["state"], body["properties"]) == (2, "collecting", {"n": 1})


async def test_cancel_with_cascade_cancels_the_children(http: Any) -> None:
    parent = await create_document(http, id="parent-doc")
    child = await create_document(http, id="child-doc", parentId="parent-doc")
    other = await create_document(http, id="other-doc")
    await eventually(
        lambda: get_json(http, "/api/documents?parentId=parent-doc"),
        lambda page: len(page["documents"]) == 1,
    )
    cancelled = await http.post(
        f"/api/documents/{parent}/cancel", json={"reason": "candidate withdrew", "cascade": True}
    )
    assert cancelled.status == 200, await cancelled.text()
    assert (await cancelled.json())["cascaded"] == [{"id": child, "cancelled": True}]
    child_body = await get_json(http, f"/api/documents/{child}")
    assert child_body["state"] == "cancelled"
    assert "candidate withdrew" in child_body["cancelReason"]
    assert (await get_json(http, f"/api/documents/{other}"))["state"] == "collecting"
    again = await http.post(f"/api/documents/{parent}/cancel", json={"reason": "again"})
    assert again.status == 409
    missing = await http.post(f"/api/documents/{other}/cancel", json={})
    assert (await missing.json())["error"]["details"][0]["field"] == "reason"


async def test_events_through_the_generic_route_are_validated(
    host: DurableTestHost, http: Any
) -> None:
    document_id = await create_document(http)
    bad = await http.post(
        f"/api/instances/{document_id}/events/InterviewFeedback", json={"feedback": "x"}
    )
    assert bad.status == 400
    good = await http.post(
        f"/api/instances/{document_id}/events/interviewfeedback",
        json={"feedback": "Great", "is_passed": True, "author": "lead"},
    )
    assert good.status == 202
    body = await eventually(
        lambda: get_json(http, f"/api/documents/{document_id}"),
        lambda body: "interviewFeedback" in body["sections"],
    )
    assert body["sections"]["interviewFeedback"]["author"] == "lead"


async def test_a_bad_payload_through_the_builtin_webhook_is_recorded_not_fatal(
    host: DurableTestHost, http: Any
) -> None:
    document_id = await create_document(http)
    await host.raise_event(
        document_id, "ContractFeedback", {"IsPassed": "perhaps"}, as_client=False
    )
    await host.raise_event(document_id, "SubmissionApproval", True, as_client=False)
    body = await eventually(
        lambda: get_json(http, f"/api/documents/{document_id}"),
        lambda body: len(body["audit"]) == 3,
    )
    assert body["runtimeStatus"] == "Running"
    refused, kept = body["audit"][1:]
    assert refused["action"] == "refused" and "feedback" in refused["detail"]
    # An approval before the last section is kept, not refused (applied once complete).
    assert kept["action"] == "approval_kept" and "missing" in kept["detail"]
    assert body["keptApproval"]["approved"] is True
    assert body["revision"] == 2


async def test_an_outcome_not_seen_in_time_answers_202_with_a_status_link(
    http: Any, monkeypatch: Any
) -> None:
    document_id = await create_document(http)
    monkeypatch.setenv("DOCUMENTS_UPDATE_WAIT_SECONDS", "0.2")
    base = f"/runtime/webhooks/durabletask/instances/{document_id}"
    assert (await http.post(f"{base}/suspend?reason=test")).status == 202
    pending = await http.patch(
        f"/api/documents/{document_id}", json={"title": "Later"}, headers={"Idempotency-Key": "k1"}
    )
    assert pending.status == 202
    link = pending.headers["Location"]
    assert link == f"/api/documents/{document_id}/status?requestId=k1"
    assert (await http.post(f"{base}/resume?reason=test")).status == 202
    body = await eventually(lambda: get_json(http, link), lambda body: body["request"])
    assert len(body["request"].pop("fingerprint")) == 32
    assert body["request"] == {
        "requestId": "k1",
        "ok": True,
        "revision": 2,
        "code": None,
        "message": None,
        "missingSections": [],
    }
