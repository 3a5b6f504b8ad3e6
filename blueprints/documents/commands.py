"""Sending a friendly-route request to a document and learning its outcome.

Raising an event answers nothing, so each request carries a request ID (the client's
``Idempotency-Key`` or a generated one); the orchestrator records the outcome under that ID,
and the handler polls the instance briefly for it. A request not seen after a moment is raised
again: the orchestrator applies a request ID once, so a repeat is harmless, and it covers an
event that arrived while the instance was between generations and was not carried over.
"""

from __future__ import annotations

import asyncio

import azure.durable_functions as df

from blueprints import key_reuse
from blueprints.documents.handling import update_fingerprint
from blueprints.documents.views import DocumentView, find_document
from blueprints.http_errors import ApiError
from blueprints.request_outcomes import request_id_of, wait_seconds
from models.documents import UPDATE_EVENT, DocumentUpdateEvent, RequestOutcome

__all__ = [
    "WAIT_SETTING",
    "closed_conflict",
    "refuse_reused_key",
    "request_id_of",
    "send_update",
]

WAIT_SETTING = "DOCUMENTS_UPDATE_WAIT_SECONDS"
_DEFAULT_WAIT_SECONDS = 5.0
_RAISE_AGAIN_AFTER = 1.0


def closed_conflict(view: DocumentView) -> ApiError:
    """Return the 409 answered for a request to a submitted or cancelled document."""
    document = view.document
    return ApiError(
        409,
        "DocumentClosed",
        f"Document '{document.id}' is {document.state.value}; it takes no more changes.",
        [{"field": "state", "code": "document_closed", "message": f"state is {document.state}"}],
    )


def _outcome_in(view: DocumentView, request_id: str) -> RequestOutcome | None:
    return next((item for item in view.outcomes if item.request_id == request_id), None)


def refuse_reused_key(
    found: DocumentView | RequestOutcome | None, update: DocumentUpdateEvent
) -> None:
    """Answer 422 when the outcome under the update's key was recorded for another payload.

    ``found`` is the document as read (its outcome under the key, if any) or that outcome.
    An outcome without a fingerprint (recorded before it was kept) answers as before.
    """
    outcome = _outcome_in(found, update.request_id) if isinstance(found, DocumentView) else found
    if outcome is not None and outcome.request_id == update.request_id:
        compared = {"payload": (outcome.fingerprint, update_fingerprint(update))}
        key_reuse.refuse_reused_key(update.request_id, compared)


async def _raise_unless_gone(
    client: df.DurableOrchestrationClient, document_id: str, update: DocumentUpdateEvent
) -> None:
    try:
        await client.raise_event(document_id, UPDATE_EVENT, update.to_wire())
    except Exception as error:
        # The document closed since it was read (perhaps by this very request, raised again
        # after a slow second): the next read shows the outcome, or that it is closed. Purged
        # meanwhile (the host answers 404): the next read finds its archive, or nothing.
        if "is gone" not in str(error) and "No instance with ID" not in str(error):
            raise


async def send_update(
    client: df.DurableOrchestrationClient, document_id: str, update: DocumentUpdateEvent
) -> tuple[RequestOutcome | None, DocumentView | None]:
    """Raise a ``DocumentUpdate`` on a document and wait briefly for its outcome.

    Returns
    -------
    tuple[RequestOutcome | None, DocumentView | None]
        The outcome (None when not seen in time, or when the document closed without applying
        the request) and the document as last read.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + wait_seconds(WAIT_SETTING, _DEFAULT_WAIT_SECONDS)
    raised_again = False
    await _raise_unless_gone(client, document_id, update)
    delay = 0.01
    view: DocumentView | None = None
    while True:
        view = await find_document(client, document_id)
        outcome = _outcome_in(view, update.request_id) if view else None
        if outcome is not None or view is None or not view.is_running:
            return outcome, view
        now = loop.time()
        if now >= deadline:
            return None, view
        if not raised_again and now - started >= _RAISE_AGAIN_AFTER:
            raised_again = True
            await _raise_unless_gone(client, document_id, update)
        await asyncio.sleep(min(delay, max(deadline - now, 0)))
        delay = min(delay * 2, 0.2)
