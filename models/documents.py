"""Models of the work-in-progress document workflow (employee onboarding, ``wip_document``).

A document collects three feedback sections (interview, background check, contract) from
events that arrive in any order over days, is edited with JSON merge patches, and ends when an
approver submits it (approved or rejected) or someone cancels it. Event names follow the
Durable Functions convention clients already use (``InterviewFeedback``...
``SubmissionApproval``); the friendly routes send one generic ``DocumentUpdate`` event that
carries a request ID, so the orchestrator can report the outcome of each request.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from models.common import ContinuationToken, UtcTime, WireModel
from models.ids import DocumentId, IdempotencyKey

__all__ = [
    "APPROVAL_EVENT",
    "SECTION_EVENTS",
    "SECTION_LABELS",
    "UPDATE_EVENT",
    "ArchiveDocumentInput",
    "AuditEntry",
    "CancelRequest",
    "CreateDocumentRequest",
    "Decision",
    "Document",
    "DocumentFields",
    "DocumentInput",
    "DocumentLink",
    "DocumentListQuery",
    "DocumentPage",
    "DocumentStatusQuery",
    "DocumentPatch",
    "DocumentResult",
    "DocumentState",
    "DocumentStatus",
    "DocumentSummary",
    "DocumentUpdateEvent",
    "FeedbackEvent",
    "RequestOutcome",
    "Section",
    "SubmissionApprovalEvent",
    "SubmitRequest",
]

# Event name -> section key, in the order the sections are shown.
SECTION_EVENTS = {
    "InterviewFeedback": "interviewFeedback",
    "BackgroundCheckFeedback": "backgroundCheckFeedback",
    "ContractFeedback": "contractFeedback",
}
SECTION_LABELS = {
    "interviewFeedback": "Interview feedback",
    "backgroundCheckFeedback": "Background check feedback",
    "contractFeedback": "Contract feedback",
}
APPROVAL_EVENT = "SubmissionApproval"
UPDATE_EVENT = "DocumentUpdate"

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]


class DocumentState(StrEnum):
    """Lifecycle state of a document."""

    COLLECTING = "collecting"
    READY = "ready"
    SUBMITTED = "submitted"
    CANCELLED = "cancelled"

    @property
    def is_closed(self) -> bool:
        """Whether the document takes no more changes."""
        return self in (DocumentState.SUBMITTED, DocumentState.CANCELLED)


class DocumentLink(WireModel):
    """A link from one document to another (e.g. a background-check document)."""

    document_id: DocumentId
    relation: ShortText = "related"


class DocumentFields(WireModel):
    """The properties a document starts with (input of ``wip_document`` when started bare)."""

    title: ShortText
    created_date: UtcTime | None = Field(default=None, description="Defaults to the start.")
    creator: ShortText
    application_id: ShortText
    properties: dict[str, Any] = Field(default_factory=dict, description="Free-form fields.")
    parent_id: DocumentId | None = None
    links: list[DocumentLink] = Field(default_factory=list, max_length=50)
    approver: ShortText | None = Field(
        default=None,
        description="Told (outbox) each time the document becomes ready for a decision; "
        "default: the role 'document-approvers'.",
    )


class CreateDocumentRequest(DocumentFields):
    """Body of ``POST /api/documents``."""

    id: DocumentId | None = Field(default=None, description="Caller-chosen document ID.")
    from_document_id: DocumentId | None = Field(
        default=None, description="An archived document whose properties and sections to copy."
    )


class FeedbackEvent(WireModel):
    """Payload of ``InterviewFeedback``, ``BackgroundCheckFeedback`` and ``ContractFeedback``."""

    identity_fields: ClassVar[tuple[str, ...]] = ("author",)

    feedback: LongText = Field(min_length=1)
    is_passed: bool
    author: ShortText | None = None


class SubmissionApprovalEvent(WireModel):
    """Payload of ``SubmissionApproval``: ``true``/``false``, or an object with the approver."""

    identity_fields: ClassVar[tuple[str, ...]] = ("approver",)

    approved: bool
    approver: ShortText | None = None
    comments: LongText | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_boolean(cls, value: Any) -> Any:
        # Convention clients raise the decision as a bare JSON boolean.
        return {"approved": value} if isinstance(value, bool) else value


class DocumentPatch(WireModel):
    """Body of ``PATCH /api/documents/{id}``: a JSON merge patch (RFC 7396) of editable fields.

    ``null`` removes a property or a section; a section object is merged into the one present.
    """

    model_config = ConfigDict(extra="forbid")

    title: ShortText | None = None
    properties: dict[str, Any] | None = None
    sections: dict[str, dict[str, Any] | None] | None = None


class DocumentUpdateEvent(WireModel):
    """Payload of ``DocumentUpdate``, the channel of the friendly routes."""

    identity_fields: ClassVar[tuple[str, ...]] = ("approver", "actor")

    request_id: ShortText
    action: Literal["patch", "submit", "cancel"]
    expected_revision: int | None = Field(default=None, ge=0)
    patch: dict[str, Any] | None = None
    approved: bool | None = None
    approver: ShortText | None = None
    comments: LongText | None = None
    reason: LongText | None = None
    actor: ShortText | None = None


class Section(WireModel):
    """A feedback section as collected: what was said, by whom, when and through which channel."""

    feedback: str
    is_passed: bool
    author: str | None = None
    received_at: datetime
    via: str
    revision: int


class Decision(WireModel):
    """The approver's decision."""

    approved: bool
    approver: str | None = None
    comments: str | None = None
    decided_at: datetime


class AuditEntry(WireModel):
    """One entry of a document's audit trail (changes and refused events)."""

    at: datetime
    revision: int
    action: str
    via: str
    actor: str | None = None
    request_id: str | None = None
    fields: list[str] = Field(default_factory=list)
    detail: str | None = None


class Document(WireModel):
    """The whole work document."""

    id: str
    title: str
    creator: str
    application_id: str
    created_date: datetime
    created_at: datetime
    properties: dict[str, Any] = Field(default_factory=dict)
    sections: dict[str, Section] = Field(default_factory=dict)
    state: DocumentState = DocumentState.COLLECTING
    stage: str = "Waiting for feedback"
    revision: int = 1
    updated_at: datetime
    parent_id: str | None = None
    links: list[DocumentLink] = Field(default_factory=list)
    template_id: str | None = None
    approver: str | None = Field(default=None, description="Told when the document is ready.")
    decision: Decision | None = None
    kept_approval: Decision | None = Field(
        default=None,
        description="A SubmissionApproval that arrived before the last section; applied as "
        "soon as the document is complete.",
    )
    cancel_reason: str | None = None
    audit: list[AuditEntry] = Field(default_factory=list)
    audit_dropped: int = Field(default=0, description="Oldest audit entries no longer kept.")


class RequestOutcome(WireModel):
    """What became of one friendly-route request (looked up by its request ID)."""

    request_id: str
    ok: bool
    revision: int
    code: str | None = None
    message: str | None = None
    missing_sections: list[str] = Field(default_factory=list)
    fingerprint: str | None = Field(
        default=None,
        description="A digest of the request as validated, telling a retry from another request "
        "reusing its Idempotency-Key; none on outcomes recorded before it was kept.",
    )


class DocumentInput(WireModel):
    """Input of each ``wip_document`` generation: the document and the requests processed."""

    document: Document
    outcomes: list[RequestOutcome] = Field(default_factory=list)
    generation: int = 0
    readiness: int = Field(
        default=0, description="How many times the document became ready (one notice each)."
    )


class DocumentStatus(WireModel):
    """Custom status of ``wip_document``: small, for pollers of ``statusQueryGetUri``."""

    stage: str
    state: DocumentState
    revision: int
    missing_sections: list[str]
    generation: int
    requests: list[RequestOutcome] = Field(default_factory=list)


class DocumentResult(WireModel):
    """Output of ``wip_document`` (and what the archive holds)."""

    state: DocumentState
    decision: Decision | None
    document: Document


class ArchiveDocumentInput(WireModel):
    """Input of the ``archive_document`` activity."""

    result: DocumentResult


class SubmitRequest(WireModel):
    """Body of ``POST /api/documents/{id}/submit``."""

    approved: bool
    approver: ShortText
    comments: LongText | None = None


class CancelRequest(WireModel):
    """Body of ``POST /api/documents/{id}/cancel``."""

    reason: LongText = Field(min_length=1)
    cascade: bool = Field(default=False, description="Also cancel the child documents.")
    actor: ShortText | None = None


class DocumentListQuery(WireModel):
    """Query string of ``GET /api/documents``."""

    state: DocumentState | None = None
    creator: ShortText | None = None
    application_id: ShortText | None = None
    parent_id: DocumentId | None = None
    title: ShortText | None = Field(default=None, description="Text the title contains.")
    created_from: UtcTime | None = None
    created_to: UtcTime | None = None
    top: int = Field(default=50, ge=1, le=500)
    continuation_token: ContinuationToken | None = None


class DocumentStatusQuery(WireModel):
    """Query string of ``GET /api/documents/{id}/status``."""

    request_id: IdempotencyKey | None = Field(
        default=None, description="Also show the outcome of this request."
    )


class DocumentSummary(WireModel):
    """A row of the read model (``Documents`` table) and of ``GET /api/documents``."""

    id: str
    title: str
    creator: str
    application_id: str
    created_date: datetime
    state: DocumentState
    stage: str
    revision: int
    parent_id: str | None = None
    updated_at: datetime


class DocumentPage(WireModel):
    """Body of ``GET /api/documents``: one page and the token of the next."""

    documents: list[DocumentSummary]
    continuation_token: str | None = None
