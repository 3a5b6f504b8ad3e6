"""Finding a document for the HTTP routes: the live instance first, then the archive.

A running document's current state is its instance's input (each generation continues as new
with the whole document); a closed one is the instance's output; once the history is purged,
the archive blob written when it closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import azure.durable_functions as df
from pydantic import ValidationError

from blueprints.app_storage import in_thread
from blueprints.documents import rules
from blueprints.documents.store import read_archive
from blueprints.http_errors import ApiError
from blueprints.instance_status import runtime_status
from blueprints.route_ids import require_id
from models.common import decode_json_text
from models.documents import (
    Document,
    DocumentFields,
    DocumentInput,
    DocumentResult,
    RequestOutcome,
)

__all__ = ["DocumentView", "document_body", "document_not_found", "find_document", "load_document"]


_TAKING_EVENTS = frozenset({"Running", "Pending", "Suspended", "ContinuedAsNew"})


@dataclass
class DocumentView:
    """A document as found, with where it was found and the outcomes of recent requests."""

    document: Document
    source: str  # "instance" or "archive"
    runtime_status: str | None = None
    outcomes: list[RequestOutcome] = field(default_factory=list)

    @property
    def is_running(self) -> bool:
        """Whether the document's instance is still taking events."""
        # A suspended instance still queues events: a request to it is answered 202, not 409.
        return self.source == "instance" and self.runtime_status in _TAKING_EVENTS


def document_not_found(document_id: str) -> ApiError:
    """Return the 404 answered for an unknown document."""
    return ApiError(
        404,
        "DocumentNotFound",
        f"No document has the ID '{document_id}'.",
        [{"field": "id", "code": "not_found", "message": "unknown document"}],
    )


def _from_status(status: df.DurableOrchestrationStatus) -> DocumentView | None:
    current = runtime_status(status)
    current_name = current.value if current else None
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    recent = [RequestOutcome.model_validate(item) for item in custom.get("requests") or []]
    output = decode_json_text(status.output, levels=2)
    if isinstance(output, dict) and "document" in output:
        result = DocumentResult.model_validate(output)
        return DocumentView(result.document, "instance", current_name, recent)
    raw = decode_json_text(status.input_, levels=2)
    if isinstance(raw, dict) and "document" in raw:
        state = DocumentInput.model_validate(raw)
        return DocumentView(state.document, "instance", current_name, state.outcomes)
    if isinstance(raw, dict) and status.instance_id and status.created_time:
        # Started bare through the generic starter, before its first generation built the
        # document: show what it will build.
        fields = DocumentFields.model_validate(raw)
        document = rules.new_document(fields, status.instance_id, status.created_time)
        return DocumentView(document, "instance", current_name, recent)
    return None


async def find_document(
    client: df.DurableOrchestrationClient, document_id: str
) -> DocumentView | None:
    """Return a document from its instance or, when the instance is gone, from the archive.

    Returns
    -------
    DocumentView | None
        None when neither an instance of ``wip_document`` nor an archived copy exists.
    """
    status = await client.get_status(document_id, show_input=True)
    if status and (status.name or "").lower() == "wip_document":
        try:
            view = _from_status(status)
        except ValidationError:
            view = None
        if view is not None:
            return view
    archived = await in_thread(read_archive, document_id)
    if archived is None:
        return None
    return DocumentView(archived.document, "archive", None)


async def load_document(client: df.DurableOrchestrationClient, document_id: str) -> DocumentView:
    """Like :func:`find_document`, answering 404 when there is no such document.

    The ID is checked against the ID grammar first (400): it becomes the archive's blob name.
    """
    require_id(document_id, "document", "id")
    view = await find_document(client, document_id)
    if view is None:
        raise document_not_found(document_id)
    return view


def document_body(view: DocumentView) -> dict[str, Any]:
    """Return the JSON of ``GET /api/documents/{id}``: the document plus where it lives."""
    body = view.document.to_wire()
    body["missingSections"] = rules.missing_sections(view.document)
    body["archived"] = view.source == "archive"
    body["runtimeStatus"] = view.runtime_status
    return body
