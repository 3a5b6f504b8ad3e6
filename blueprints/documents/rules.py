"""The document's rules as plain functions: create, add a section, merge-patch, submit, cancel.

No host, no I/O: the orchestrator calls these with its deterministic clock, and the tests call
them directly. Each change bumps ``revision`` and appends to the audit trail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from models.common import validation_details
from models.documents import (
    SECTION_EVENTS,
    SECTION_LABELS,
    AuditEntry,
    Decision,
    Document,
    DocumentFields,
    DocumentPatch,
    DocumentState,
    FeedbackEvent,
    Section,
)

__all__ = [
    "DEFAULT_APPROVER",
    "MAX_AUDIT_ENTRIES",
    "PatchRejected",
    "apply_kept_approval",
    "apply_patch",
    "cancel",
    "keep_approval",
    "missing_sections",
    "new_document",
    "record",
    "section_key",
    "set_section",
    "submit",
]

# Keeps the continue-as-new input (which holds the document) well under the payload limits.
MAX_AUDIT_ENTRIES = 500
# Who is told a document is ready when its creator named nobody (a role the outbox knows).
DEFAULT_APPROVER = "document-approvers"
_SECTION_KEYS = {key.lower(): key for key in SECTION_LABELS}
_SECTION_KEYS.update({name.lower(): key for name, key in SECTION_EVENTS.items()})
_SECTION_KEYS.update({key.replace("Feedback", "_feedback").lower(): key for key in SECTION_LABELS})


class PatchRejected(ValueError):
    """A merge patch that cannot be applied; ``details`` name the fields."""

    def __init__(self, message: str, details: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.details = details


def section_key(name: str) -> str | None:
    """Return the section key for a name in any spelling (``InterviewFeedback``...), or None."""
    return _SECTION_KEYS.get(name.replace("-", "_").lower())


def new_document(
    fields: DocumentFields, document_id: str, now: datetime, template: Document | None = None
) -> Document:
    """Return a new document at revision 1, optionally copying a template's content.

    Parameters
    ----------
    fields : DocumentFields
        The creation fields.
    document_id : str
        The document (and instance) ID.
    now : datetime
        The creation time.
    template : Document | None
        A document whose properties and sections are copied (the caller's properties win).
    """
    document = Document(
        id=document_id,
        title=fields.title,
        creator=fields.creator,
        application_id=fields.application_id,
        created_date=fields.created_date or now,
        created_at=now,
        updated_at=now,
        properties={**(template.properties if template else {}), **fields.properties},
        parent_id=fields.parent_id,
        links=list(fields.links),
        template_id=template.id if template else None,
        approver=fields.approver or DEFAULT_APPROVER,
    )
    if template is not None:
        document.sections = {
            key: section.model_copy(update={"via": f"template:{template.id}", "revision": 1})
            for key, section in template.sections.items()
        }
    _refresh_stage(document, last_section=None)
    document.audit.append(
        AuditEntry(at=now, revision=1, action="created", via="create", actor=fields.creator)
    )
    return document


def missing_sections(document: Document) -> list[str]:
    """Return the keys of the sections not collected yet, in display order."""
    return [key for key in SECTION_LABELS if key not in document.sections]


def _refresh_stage(document: Document, last_section: str | None) -> None:
    if document.state.is_closed:
        return
    if not missing_sections(document):
        document.state, document.stage = DocumentState.READY, "Awaiting submission"
        return
    document.state = DocumentState.COLLECTING
    if last_section is not None:
        document.stage = f"{SECTION_LABELS[last_section]} collected"
    elif not document.sections:
        document.stage = "Waiting for feedback"


def record(document: Document, now: datetime, entry: AuditEntry) -> None:
    """Append an audit entry, dropping the oldest beyond :data:`MAX_AUDIT_ENTRIES`."""
    document.audit.append(entry)
    overflow = len(document.audit) - MAX_AUDIT_ENTRIES
    if overflow > 0:
        del document.audit[:overflow]
        document.audit_dropped += overflow


def _bump(document: Document, now: datetime) -> int:
    document.revision += 1
    document.updated_at = now
    return document.revision


def set_section(
    document: Document, key: str, event: FeedbackEvent, now: datetime, via: str, **audit: Any
) -> None:
    """Store (or correct) a feedback section and move the stage on."""
    revision = _bump(document, now)
    document.sections[key] = Section(
        feedback=event.feedback,
        is_passed=event.is_passed,
        author=event.author,
        received_at=now,
        via=via,
        revision=revision,
    )
    _refresh_stage(document, last_section=key)
    record(
        document,
        now,
        AuditEntry(
            at=now,
            revision=revision,
            action="section",
            via=via,
            fields=[f"sections.{key}"],
            **audit,
        ),
    )


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(target)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        elif isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _merge(merged[name], value)
        else:
            merged[name] = value
    return merged


def _patched_sections(document: Document, sections: dict[str, Any], now: datetime) -> list[str]:
    changed: list[str] = []
    details: list[dict[str, str]] = []
    for name, value in sections.items():
        key = section_key(name)
        if key is None:
            details.append(
                {
                    "field": f"sections.{name}",
                    "code": "unknown_section",
                    "message": f"accepted: {', '.join(SECTION_LABELS)}",
                }
            )
            continue
        if value is None:
            if document.sections.pop(key, None) is not None:
                changed.append(key)
            continue
        current = document.sections.get(key)
        base = current.to_wire() if current else {}
        try:
            event = FeedbackEvent.model_validate(_merge(base, value))
        except ValidationError as error:
            for detail in validation_details(error):
                details.append({**detail, "field": f"sections.{key}.{detail['field']}"})
            continue
        document.sections[key] = Section(
            feedback=event.feedback,
            is_passed=event.is_passed,
            author=event.author,
            received_at=now,
            via="patch",
            revision=document.revision + 1,
        )
        changed.append(key)
    if details:
        raise PatchRejected("The patch has invalid sections.", details)
    return changed


def apply_patch(document: Document, patch: dict[str, Any], now: datetime, **audit: Any) -> None:
    """Apply a JSON merge patch of title, properties and sections.

    Raises
    ------
    PatchRejected
        When the patch names unknown fields or leaves a section invalid; nothing is changed.
    """
    try:
        parsed = DocumentPatch.model_validate(patch)
    except ValidationError as error:
        raise PatchRejected("The patch is invalid.", validation_details(error)) from error
    if "title" in patch and patch["title"] is None:
        raise PatchRejected(
            "The title cannot be removed.",
            [{"field": "title", "code": "required", "message": "title cannot be null"}],
        )
    draft = document.model_copy(deep=True)
    fields: list[str] = []
    if parsed.title is not None and parsed.title != draft.title:
        draft.title, fields = parsed.title, [*fields, "title"]
    if parsed.properties is not None:
        draft.properties = _merge(draft.properties, parsed.properties)
        fields += [f"properties.{name}" for name in parsed.properties]
    last = None
    if parsed.sections is not None:
        changed = _patched_sections(draft, parsed.sections, now)
        fields += [f"sections.{key}" for key in changed]
        last = next((key for key in reversed(changed) if key in draft.sections), None)
    revision = _bump(draft, now)
    _refresh_stage(draft, last_section=last)
    record(
        draft,
        now,
        AuditEntry(at=now, revision=revision, action="patch", via="patch", fields=fields, **audit),
    )
    for name in Document.model_fields:
        setattr(document, name, getattr(draft, name))


def submit(document: Document, decision: Decision, now: datetime, via: str, **audit: Any) -> None:
    """Record the decision and close the document (the caller checks completeness)."""
    revision = _bump(document, now)
    document.decision = decision
    document.state, document.stage = DocumentState.SUBMITTED, "Submitted document"
    verdict = "approved" if decision.approved else "rejected"
    record(
        document,
        now,
        AuditEntry(at=now, revision=revision, action="submitted", via=via, detail=verdict, **audit),
    )


def keep_approval(
    document: Document, decision: Decision, now: datetime, via: str, **audit: Any
) -> None:
    """Keep a decision that arrived before the last section; the latest one kept wins."""
    revision = _bump(document, now)
    replaced = document.kept_approval is not None
    document.kept_approval = decision
    missing = ", ".join(missing_sections(document))
    verdict = "approval" if decision.approved else "rejection"
    detail = f"{verdict} kept until the document is complete (missing: {missing})"
    if replaced:
        detail += "; it replaces the one kept before"
    record(
        document,
        now,
        AuditEntry(at=now, revision=revision, action="approval_kept", via=via, detail=detail,
                   **audit),
    )  # fmt: skip


def apply_kept_approval(document: Document, now: datetime) -> bool:
    """Submit the document with its kept decision once it is complete; True when it did."""
    kept = document.kept_approval
    if kept is None or document.state is not DocumentState.READY:
        return False
    document.kept_approval = None
    submit(document, kept, now, via="kept SubmissionApproval", actor=kept.approver)
    return True


def cancel(document: Document, reason: str, now: datetime, via: str, **audit: Any) -> None:
    """Close the document as cancelled."""
    revision = _bump(document, now)
    document.cancel_reason = reason
    document.state, document.stage = DocumentState.CANCELLED, "Cancelled document"
    record(
        document,
        now,
        AuditEntry(at=now, revision=revision, action="cancelled", via=via, detail=reason, **audit),
    )
