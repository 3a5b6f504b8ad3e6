"""The ``wip_document`` orchestrator: one instance per document, instance ID = document ID.

Each generation waits for the next event on any channel (the friendly routes'
``DocumentUpdate`` and the convention events), applies it, publishes the new state, and
continues as new with the whole document as input. So the history never holds more than one
event, the current document is always the instance's input, and no wait is ever left behind
(see docs/documents.md for why this is the shape that loses no event under SDK 1.7). When the
document is submitted or cancelled, it is archived and returned as the output.
"""

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from blueprints.documents import rules
from blueprints.documents.activities import INDEX_ENTITY, NOTIFY_OPERATION
from blueprints.documents.handling import EVENT_NAMES, handle_event
from models.documents import (
    APPROVAL_EVENT,
    SECTION_EVENTS,
    UPDATE_EVENT,
    ArchiveDocumentInput,
    DocumentFields,
    DocumentInput,
    DocumentResult,
    DocumentState,
    DocumentStatus,
    DocumentSummary,
    DocumentUpdateEvent,
    FeedbackEvent,
    SubmissionApprovalEvent,
)
from models.notifications import SendNotificationInput
from models.registry import register_workflow

logger = logging.getLogger(__name__)

bp = df.Blueprint()

ORCHESTRATOR = "wip_document"
STATUS_REQUESTS = 10

register_workflow(
    ORCHESTRATOR,
    DocumentFields,
    events={
        UPDATE_EVENT: DocumentUpdateEvent,
        **dict.fromkeys(SECTION_EVENTS, FeedbackEvent),
        APPROVAL_EVENT: SubmissionApprovalEvent,
    },
)

_ARCHIVE_RETRY = df.RetryOptions(
    first_retry_interval_in_milliseconds=2000, max_number_of_attempts=5
)


def document_status(state: DocumentInput) -> DocumentStatus:
    """Return the custom status for a document state (stage, revision, recent request outcomes)."""
    document = state.document
    return DocumentStatus(
        stage=document.stage,
        state=document.state,
        revision=document.revision,
        missing_sections=rules.missing_sections(document),
        generation=state.generation,
        requests=state.outcomes[-STATUS_REQUESTS:],
    )


def document_summary(state: DocumentInput) -> DocumentSummary:
    """Return the read-model row of a document state."""
    return DocumentSummary.model_validate(state.document.to_wire())


def _publish(context: df.DurableOrchestrationContext, state: DocumentInput) -> None:
    context.set_custom_status(document_status(state).to_wire())
    context.signal_entity(
        df.EntityId(INDEX_ENTITY, context.instance_id), "upsert", document_summary(state).to_wire()
    )


def _tell_approver_if_ready(
    context: df.DurableOrchestrationContext, state: DocumentInput, was_ready: bool
) -> None:
    """Tell the approver, once per readiness, that the document waits for their decision."""
    document = state.document
    if was_ready or document.state is not DocumentState.READY:
        return
    state.readiness += 1
    notice = SendNotificationInput(
        notification_id=f"{context.instance_id}:ready:{state.readiness}",
        recipient=document.approver or rules.DEFAULT_APPROVER,
        category="document_ready",
        subject=f"'{document.title}' is complete and waits for your decision",
        body="Every section is in: interview feedback, background check and contract.",
        link=f"/api/documents/{document.id}/submit",
        workflow=ORCHESTRATOR,
        instance_id=context.instance_id,
    )
    # A signal, like the read model's: an activity here would hold continue-as-new back.
    context.signal_entity(
        df.EntityId(INDEX_ENTITY, context.instance_id), NOTIFY_OPERATION, notice.to_wire()
    )


def _close(
    context: df.DurableOrchestrationContext, state: DocumentInput
) -> Generator[Any, Any, dict[str, Any]]:
    document = state.document
    result = DocumentResult(state=document.state, decision=document.decision, document=document)
    yield context.call_activity_with_retry(
        "archive_document", _ARCHIVE_RETRY, ArchiveDocumentInput(result=result).to_wire()
    )
    verdict = document.state.value
    if document.decision is not None:
        verdict = "approved" if document.decision.approved else "rejected"
    notification = SendNotificationInput(
        notification_id=f"{context.instance_id}:closed",
        recipient=document.creator,
        category=f"document_{document.state.value}",
        subject=f"'{document.title}' was {verdict}",
        link=f"/api/documents/{document.id}",
        workflow=ORCHESTRATOR,
        instance_id=context.instance_id,
    )
    yield context.call_activity_with_retry(
        "send_notification", _ARCHIVE_RETRY, notification.to_wire()
    )
    if not context.is_replaying:
        logger.info("Document %s closed as %s", document.id, verdict)
    return result.to_wire()


@bp.orchestration_trigger(context_name="context")
def wip_document(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any] | None]:
    """Apply the next event to the document, then continue as new (or close it).

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        Input: a :class:`~models.documents.DocumentInput` as JSON, or, when started through the
        generic starter, :class:`~models.documents.DocumentFields`.

    Returns
    -------
    dict[str, Any] | None
        A :class:`~models.documents.DocumentResult` as JSON once the document is closed.
    """
    raw = context.get_input(expected_type=dict)
    if not isinstance(raw, dict) or "document" not in raw:
        fields = DocumentFields.model_validate(raw)
        now = context.current_utc_datetime
        state = DocumentInput(document=rules.new_document(fields, context.instance_id, now))
        context.continue_as_new(state.to_wire())
        return None
    state = DocumentInput.model_validate(raw)
    if state.generation == 0:
        _publish(context, state)
        _tell_approver_if_ready(context, state, was_ready=state.readiness > 0)
    else:
        context.set_custom_status(document_status(state).to_wire())
    # A fresh set of waits per generation, and one task_any: no wait outlives its generation,
    # which the SDK's and the host's event bookkeeping both need (docs/documents.md).
    waits = [context.wait_for_external_event(name) for name in EVENT_NAMES]
    winner = yield context.task_any(waits)
    name = EVENT_NAMES[waits.index(winner)]
    revision = state.document.revision
    was_ready = state.document.state is DocumentState.READY
    handle_event(state, name, winner.result, context.current_utc_datetime)
    if state.document.revision != revision:
        _publish(context, state)
    else:
        context.set_custom_status(document_status(state).to_wire())
    _tell_approver_if_ready(context, state, was_ready)
    if state.document.state.is_closed:
        return (yield from _close(context, state))
    state.generation += 1
    context.continue_as_new(state.to_wire())
    return None
