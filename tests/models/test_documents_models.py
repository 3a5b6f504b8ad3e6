"""The document models: accepted spellings, the bare-boolean approval, constraints."""

import pytest
from pydantic import ValidationError

from models.common import parse_event
from models.documents import (
    CreateDocumentRequest,
    DocumentListQuery,
    DocumentPatch,
    DocumentState,
    FeedbackEvent,
    SubmissionApprovalEvent,
)


def test_feedback_accepts_pascal_camel_and_snake_case() -> None:
    for payload in (
        {"Feedback": "ok", "IsPassed": True},
        {"feedback": "ok", "isPassed": True},
        {"feedback": "ok", "is_passed": True},
    ):
        assert FeedbackEvent.model_validate(payload).is_passed is True


@pytest.mark.parametrize("payload", [True, "true", '"true"', {"Approved": True}])
def test_the_approval_is_a_bare_boolean_or_an_object(payload: object) -> None:
    assert parse_event(SubmissionApprovalEvent, payload).approved is True


def test_document_ids_are_safe_characters_only() -> None:
    fields = {"title": "t", "creator": "c", "applicationId": "a"}
    assert CreateDocumentRequest.model_validate({**fields, "id": "emp-1.2_x"}).id == "emp-1.2_x"
    for bad in ("a/b", "-lead", "a b", "x" * 101, "é"):
        with pytest.raises(ValidationError):
            CreateDocumentRequest.model_validate({**fields, "id": bad})


def test_a_patch_rejects_read_only_fields() -> None:
    with pytest.raises(ValidationError) as error:
        DocumentPatch.model_validate({"creator": "me", "title": "ok"})
    assert error.value.errors()[0]["loc"] == ("creator",)


def test_list_query_bounds() -> None:
    query = DocumentListQuery.model_validate({"state": "ready", "applicationId": "A"})
    assert (query.state, query.top) == (DocumentState.READY, 50)
    with pytest.raises(ValidationError):
        DocumentListQuery.model_validate({"top": "501"})
    assert DocumentState.SUBMITTED.is_closed and not DocumentState.READY.is_closed
