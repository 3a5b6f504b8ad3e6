"""The document rules and event handling as plain functions, without a host."""

from datetime import UTC, datetime, timedelta

import pytest

from blueprints.documents import rules
from blueprints.documents.commands import refuse_reused_key
from blueprints.documents.handling import MAX_OUTCOMES, handle_event, update_fingerprint
from blueprints.http_errors import ApiError
from models.documents import (
    DocumentFields,
    DocumentInput,
    DocumentState,
    DocumentUpdateEvent,
    RequestOutcome,
)

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def _state() -> DocumentInput:
    fields = DocumentFields(title="Onboarding", creator="hr", application_id="APP")
    return DocumentInput(document=rules.new_document(fields, "doc-1", NOW))


def _update(request_id: str, **extra: object) -> dict[str, object]:
    return {"requestId": request_id, "action": "patch", **extra}


def test_sections_in_any_order_move_the_stage_to_awaiting_submission() -> None:
    state = _state()
    assert state.document.stage == "Waiting for feedback"
    handle_event(state, "ContractFeedback", '{"Feedback": "signed", "IsPassed": true}', NOW)
    assert state.document.stage == "Contract feedback collected"
    handle_event(state, "InterviewFeedback", {"feedback": "ok", "isPassed": True}, NOW)
    handle_event(state, "BackgroundCheckFeedback", {"feedback": "ok", "isPassed": False}, NOW)
    assert (state.document.state, state.document.stage) == (
        DocumentState.READY,
        "Awaiting submission",
    )
    assert state.document.revision == 4


def test_a_stale_revision_and_a_repeat_are_recorded_not_applied() -> None:
    state = _state()
    patch = {"properties": {"a": 1}}
    handle_event(state, "DocumentUpdate", _update("r1", patch=patch, expectedRevision=1), NOW)
    handle_event(state, "DocumentUpdate", _update("r1", patch=patch, expectedRevision=1), NOW)
    handle_event(state, "DocumentUpdate", _update("r2", patch=patch, expectedRevision=1), NOW)
    assert state.document.revision == 2
    assert [(o.request_id, o.ok, o.code) for o in state.outcomes] == [
        ("r1", True, None),
        ("r2", False, "StaleRevision"),
    ]


def test_outcomes_and_audit_stay_bounded() -> None:
    state = _state()
    for number in range(MAX_OUTCOMES + 20):
        update = _update(f"r{number}", patch={"properties": {"n": number}})
        handle_event(state, "DocumentUpdate", update, NOW + timedelta(seconds=number))
    assert len(state.outcomes) == MAX_OUTCOMES
    assert state.outcomes[0].request_id == "r20"
    for number in range(rules.MAX_AUDIT_ENTRIES):
        handle_event(state, "DocumentUpdate", _update(f"x{number}", patch={"title": "t"}), NOW)
    assert len(state.document.audit) == rules.MAX_AUDIT_ENTRIES
    assert state.document.audit_dropped == MAX_OUTCOMES + 21


def test_submission_needs_every_section_and_closes_the_document() -> None:
    state = _state()
    handle_event(state, "DocumentUpdate", _update("s1", action="submit", approved=True), NOW)
    assert state.outcomes[-1].missing_sections == list(rules.missing_sections(state.document))
    sections = {
        key: {"feedback": "ok", "isPassed": True}
        for key in ("interviewFeedback", "backgroundCheckFeedback", "contractFeedback")
    }
    handle_event(state, "DocumentUpdate", _update("p1", patch={"sections": sections}), NOW)
    assert state.document.state is DocumentState.READY
    handle_event(state, "SubmissionApproval", "false", NOW)
    assert state.document.state is DocumentState.SUBMITTED
    assert state.document.decision is not None and state.document.decision.approved is False


def test_an_early_approval_is_kept_and_applied_when_the_document_is_complete() -> None:
    state = _state()
    handle_event(state, "SubmissionApproval", {"approved": True, "approver": "ana"}, NOW)
    handle_event(state, "SubmissionApproval", {"approved": False, "approver": "ana"}, NOW)
    assert state.document.state is DocumentState.COLLECTING
    assert [entry.action for entry in state.document.audit[-2:]] == ["approval_kept"] * 2
    assert "replaces" in (state.document.audit[-1].detail or "")
    assert state.document.kept_approval is not None
    for name in ("InterviewFeedback", "BackgroundCheckFeedback", "ContractFeedback"):
        assert state.document.state is DocumentState.COLLECTING
        handle_event(state, name, {"feedback": "ok", "isPassed": True}, NOW)
    assert state.document.state is DocumentState.SUBMITTED
    assert state.document.decision is not None and state.document.decision.approved is False
    assert state.document.kept_approval is None
    assert state.document.audit[-1].via == "kept SubmissionApproval"


def test_a_malformed_update_is_refused_with_its_request_id() -> None:
    state = _state()
    handle_event(state, "DocumentUpdate", {"requestId": "bad", "action": "explode"}, NOW)
    handle_event(state, "DocumentUpdate", None, NOW)
    assert state.document.revision == 1
    assert [o.code for o in state.outcomes] == ["InvalidRequest"]
    assert [entry.action for entry in state.document.audit] == ["created", "refused", "refused"]


def test_an_outcome_keeps_the_fingerprint_the_route_compares_and_old_ones_answer_retries() -> None:
    """The route's update and the event the orchestrator parsed fingerprint alike; an outcome
    recorded before fingerprints were kept still answers a retry (no 422)."""
    state = _state()
    update = DocumentUpdateEvent(
        request_id="k", action="patch", expected_revision=1, patch={"title": "T", "n": 1.5}
    )
    handle_event(state, "DocumentUpdate", update.to_wire(), NOW)
    [outcome] = state.outcomes
    assert outcome.fingerprint == update_fingerprint(update)
    refuse_reused_key(outcome, update.model_copy(update={"expected_revision": 2}))  # a retry
    with pytest.raises(ApiError) as reused:
        refuse_reused_key(outcome, update.model_copy(update={"patch": {"title": "U"}}))
    assert (reused.value.status, reused.value.details[0]["field"]) == (422, "Idempotency-Key")

    old = RequestOutcome.model_validate({"requestId": "k", "ok": True, "revision": 2})
    refuse_reused_key(old, update.model_copy(update={"patch": {"title": "U"}}))
