"""The document's storage steps: the ``archive_document`` activity and the ``document_index``
entity that keeps the read model and tells the approver when the document is ready.

The read model and the readiness notice are written by an entity rather than an activity on
purpose: the orchestrator signals it (fire-and-forget) and continues as new in the same
episode, whereas an activity is an open task that holds continue-as-new back, and events raised
meanwhile would be dropped (see docs/documents.md, "Bounded history"). Signals to one entity
run one at a time in the order sent, so an older revision never overwrites a newer row.
"""

import azure.durable_functions as df

from blueprints.documents.store import upsert_summary, write_archive
from blueprints.notifications.outbox import record_notification
from models.common import parse_event
from models.documents import ArchiveDocumentInput, DocumentSummary
from models.notifications import SendNotificationInput

bp = df.Blueprint()

INDEX_ENTITY = "document_index"
NOTIFY_OPERATION = "notify"


@bp.activity_trigger(input_name="payload")
def archive_document(payload: dict) -> dict:
    """Write a closed document to the archive; repeating it writes the same blob.

    Parameters
    ----------
    payload : dict
        An :class:`~models.documents.ArchiveDocumentInput` as JSON.

    Returns
    -------
    dict
        ``{"ok": True, "documentId": ...}``.
    """
    request = ArchiveDocumentInput.model_validate(payload)
    write_archive(request.result)
    return {"ok": True, "documentId": request.result.document.id}


@bp.entity_trigger(context_name="context")
def document_index(context: df.DurableEntityContext) -> None:
    """Upsert a document's read-model row unless a newer revision was written already, or
    write a notice to the outbox.

    Parameters
    ----------
    context : azure.durable_functions.DurableEntityContext
        Operation ``upsert`` with a :class:`~models.documents.DocumentSummary` as input, or
        ``notify`` with a :class:`~models.notifications.SendNotificationInput` (written once
        per notification ID, so a repeated operation records nothing new); the entity's state
        is ``{"revision": <last revision written>}``.
    """
    state = context.get_state(lambda: {"revision": 0})
    if context.operation_name == NOTIFY_OPERATION:
        record_notification(parse_event(SendNotificationInput, context.get_input()))
        context.set_state(state)
        return
    summary = parse_event(DocumentSummary, context.get_input())
    # >= rather than >: an operation replayed after a crash rewrites the same row.
    if summary.revision >= int(state.get("revision", 0)):
        upsert_summary(summary)
        state = {"revision": summary.revision}
    context.set_state(state)
