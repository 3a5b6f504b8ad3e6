"""What one event does to a document: validate it, deduplicate it, apply it, record the outcome.

Plain functions, called by the orchestrator once per event. Events raised through the
durable extension's own webhook (``sendEventPostUri``) skip the HTTP validation, so a payload
that does not fit is recorded in the audit trail as refused instead of failing the instance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from blueprints import key_reuse
from blueprints.documents import rules
from models.common import decode_json_text, parse_event, validation_details
from models.documents import (
    APPROVAL_EVENT,
    SECTION_EVENTS,
    UPDATE_EVENT,
    AuditEntry,
    Decision,
    DocumentInput,
    DocumentUpdateEvent,
    FeedbackEvent,
    RequestOutcome,
    SubmissionApprovalEvent,
)

__all__ = ["EVENT_NAMES", "MAX_OUTCOMES", "handle_event", "update_fingerprint"]

EVENT_NAMES = [UPDATE_EVENT, *SECTION_EVENTS, APPROVAL_EVENT]
# Request IDs remembered for deduplication; a retry older than this many requests is applied
# again, which the If-Match revision check still guards against.
MAX_OUTCOMES = 100


def _refuse(state: DocumentInput, now: datetime, via: str, detail: str, **audit: Any) -> None:
    document = state.document
    entry = AuditEntry(
        at=now, revision=document.revision, action="refused", via=via, detail=detail, **audit
    )
    rules.record(document, now, entry)


def _problem_text(error: ValidationError) -> str:
    return "; ".join(f"{d['field']}: {d['message']}" for d in validation_details(error))


def update_fingerprint(update: DocumentUpdateEvent) -> str:
    """Return the fingerprint an update's outcome keeps (``blueprints/key_reuse.py``).

    An outcome holds none of the request's fields, so it keeps this digest of them instead:
    all but the request ID and ``If-Match``'s expected revision, which the route fills from
    headers (a retry after a change reads the changed revision).
    """
    return key_reuse.fingerprint(update, exclude=("request_id", "expected_revision"))


def _remember(state: DocumentInput, outcome: RequestOutcome) -> None:
    state.outcomes.append(outcome)
    del state.outcomes[:-MAX_OUTCOMES]


def _missing_labels(state: DocumentInput) -> list[str]:
    return rules.missing_sections(state.document)


def _apply_update(state: DocumentInput, update: DocumentUpdateEvent, now: datetime) -> None:
    document = state.document
    audit = {"actor": update.actor, "request_id": update.request_id}

    def outcome(code: str | None = None, message: str | None = None, **extra: Any) -> None:
        _remember(
            state,
            RequestOutcome(
                request_id=update.request_id,
                ok=code is None,
                revision=document.revision,
                code=code,
                message=message,
                fingerprint=update_fingerprint(update),
                **extra,
            ),
        )

    if update.expected_revision is not None and update.expected_revision != document.revision:
        outcome(
            "StaleRevision",
            f"expected revision {update.expected_revision}, the document is at {document.revision}",
        )
        return
    if update.action == "patch":
        try:
            rules.apply_patch(document, update.patch or {}, now, **audit)
        except rules.PatchRejected as error:
            outcome(
                "InvalidPatch", "; ".join(f"{d['field']}: {d['message']}" for d in error.details)
            )
            return
    elif update.action == "submit":
        missing = _missing_labels(state)
        if missing or update.approved is None:
            outcome(
                "Incomplete", f"sections missing: {', '.join(missing)}", missing_sections=missing
            )
            return
        decision = Decision(
            approved=update.approved,
            approver=update.approver,
            comments=update.comments,
            decided_at=now,
        )
        rules.submit(document, decision, now, via="submit", **audit)
    else:
        rules.cancel(document, update.reason or "cancelled", now, via="cancel", **audit)
    outcome()


def _apply_update_event(state: DocumentInput, payload: Any, now: datetime) -> None:
    try:
        update = parse_event(DocumentUpdateEvent, payload)
    except ValidationError as error:
        raw = decode_json_text(payload, levels=3)
        request_id = raw.get("requestId") if isinstance(raw, dict) else None
        _refuse(state, now, UPDATE_EVENT, _problem_text(error), request_id=request_id)
        if isinstance(request_id, str) and request_id:
            _remember(
                state,
                RequestOutcome(
                    request_id=request_id,
                    ok=False,
                    revision=state.document.revision,
                    code="InvalidRequest",
                    message=_problem_text(error),
                ),
            )
        return
    if any(known.request_id == update.request_id for known in state.outcomes):
        return  # a retry of a request already applied: applied once
    _apply_update(state, update, now)


def handle_event(state: DocumentInput, name: str, payload: Any, now: datetime) -> None:
    """Apply one event to the document in ``state`` (changed in place).

    Parameters
    ----------
    state : DocumentInput
        The document and the outcomes of recent requests.
    name : str
        The event name (one of :data:`EVENT_NAMES`).
    payload : Any
        The event data as ``wait_for_external_event`` delivered it.
    now : datetime
        The orchestration's current time.
    """
    _handle(state, name, payload, now)
    if not state.document.state.is_closed:
        rules.apply_kept_approval(state.document, now)


def _handle(state: DocumentInput, name: str, payload: Any, now: datetime) -> None:
    document = state.document
    if name == UPDATE_EVENT:
        _apply_update_event(state, payload, now)
    elif name in SECTION_EVENTS:
        try:
            feedback = parse_event(FeedbackEvent, payload)
        except ValidationError as error:
            _refuse(state, now, name, _problem_text(error))
            return
        rules.set_section(
            document, SECTION_EVENTS[name], feedback, now, via=name, actor=feedback.author
        )
    elif name == APPROVAL_EVENT:
        try:
            approval = parse_event(SubmissionApprovalEvent, payload)
        except ValidationError as error:
            _refuse(state, now, name, _problem_text(error))
            return
        decision = Decision(
            approved=approval.approved,
            approver=approval.approver,
            comments=approval.comments,
            decided_at=now,
        )
        if _missing_labels(state):
            # As the runtime keeps an event until an orchestrator waits for it: the decision
            # counts once the last section arrives.
            rules.keep_approval(document, decision, now, via=name, actor=approval.approver)
            return
        rules.submit(document, decision, now, via=name, actor=approval.approver)
