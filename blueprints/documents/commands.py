"""Sending a friendly-route request to a document and learning its outcome.

Raising an event answers nothing, so each request carries a request ID (the client's
``Idempotency-Key`` or a generated one); the orchestrator records the outcome under that ID,
and the handler polls the instance briefly for it. A request not seen after a moment is raised
again: the orchestrator applies a request ID once, so a repeat is harmless, and it covers an
event that arrived while the instance was between generations and was not carried over.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import azure.durable_functions as df

from blueprints.documents.views import DocumentView, find_document
from blueprints.http_errors import ApiError
from models.documents import UPDATE_EVENT, DocumentUpdateEvent, RequestOutcome

__all__ = ["WAIT_SETTING", "closed_conflict", "new_request_id", "send_update"]

WAIT_SETTING = "DOCUMENTS_UPDATE_WAIT_SECONDS"
_DEFAULT_WAIT_SECONDS = 5.0
_RAISE_AGAIN_AFTER = 1.0


def new_request_id() -> str:
    """Return a request ID for a request that came without an ``Idempotency-Key``."""
    return uuid.uuid4().hex


def closed_conflict(view: DocumentView) -> ApiError:
    """Return the 409 answered for a request to a submitted or cancelled document."""
    document = view.document
    return ApiError(
        409,
        "DocumentClosed",
        f"Document '{document.id}' is {document.state.value}; it takes no more changes.",
        [{"field": "state", "code": "document_closed", "message": f"state is {document.state}"}],
    )


def _wait_seconds() -> float:
    try:
        return float(os.environ.get(WAIT_SETTING, _DEFAULT_WAIT_SECONDS))
    except ValueError:
        return _DEFAULT_WAIT_SECONDS


def _outcome_in(view: DocumentView, request_id: str) -> RequestOutcome | None:
    return next((item for item in view.outcomes if item.request_id == request_id), None)


async def _raise_update(
    client: df.DurableOrchestrationClient, document_id: str, update: DocumentUpdateEvent
) -> bool:
    """Raise the update; False when the instance finished meanwhile (the host answers 410)."""
    try:
        await client.raise_event(document_id, UPDATE_EVENT, update.to_wire())
    except Exception as error:
        # The SDK reports the host's 410 only through the message. A finished document either
        # applied the request already (its outcome is recorded) or is closed: both are read
        # from the document, not a server error.
        if "is gone" not in str(error):
            raise
        return False
    return True


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
    deadline = started + _wait_seconds()
    raised_again = False
    if not await _raise_update(client, document_id, update):
        return None, await find_document(client, document_id)
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
            await _raise_update(client, document_id, update)
        await asyncio.sleep(min(delay, max(deadline - now, 0)))
        delay = min(delay * 2, 0.2)
