"""Changing documents: ``PATCH /api/documents/{id}`` and ``POST .../submit|cancel``.

Each handler checks what it can up front (404, 422 for an ``Idempotency-Key`` whose outcome
was recorded for another payload, 409 closed, 412 stale, 400, 409 incomplete), then sends the
request to the orchestrator, which decides for good, and answers with the outcome it recorded:
200 with the new revision, 412, 409, 400, 422, or 202 with a status link when the outcome did
not arrive in time.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel

from blueprints import identity
from blueprints.app_storage import in_thread
from blueprints.documents import rules
from blueprints.documents.commands import (
    closed_conflict,
    refuse_reused_key,
    request_id_of,
    send_update,
)
from blueprints.documents.store import find_children
from blueprints.documents.views import (
    DocumentView,
    document_body,
    document_not_found,
    load_document,
)
from blueprints.http_errors import ApiError, json_response
from blueprints.http_headers import ACTOR, IDEMPOTENCY_KEY, IF_MATCH
from blueprints.http_input import (
    HandlerT,
    JsonBody,
    endpoint,
    path_id,
    read_body,
    read_header,
    read_json,
)
from models.documents import CancelRequest, DocumentUpdateEvent, RequestOutcome, SubmitRequest
from models.responses import DocumentChanged

bp = df.Blueprint()

_MAX_CASCADE_DEPTH = 5


_DOCUMENT = {"id": "document"}
_CHANGE_HEADERS = (IF_MATCH, IDEMPOTENCY_KEY)
# 200 with the outcome, or 202 when the outcome did not arrive in time.
_CHANGED = {200: DocumentChanged, 202: DocumentChanged}


def _change(model: type[BaseModel]) -> Callable[[HandlerT], HandlerT]:
    # submit and cancel read the same headers and answer alike; only their bodies differ.
    return endpoint(
        path=_DOCUMENT,
        headers=_CHANGE_HEADERS,
        body=JsonBody(model),
        responses=_CHANGED,
        errors=(403, 404, 409, 412, 422),
    )


def _if_match(req: func.HttpRequest) -> int | None:
    revision: int | None = read_header(req, IF_MATCH)
    return revision


def _stale(expected: int, revision: int) -> ApiError:
    return ApiError(
        412,
        "StaleRevision",
        f"The document is at revision {revision}, not {expected}; read it again and retry.",
        [{"field": "If-Match", "code": "stale_revision", "message": f"current is {revision}"}],
        headers={"ETag": f'"{revision}"'},
    )


def _incomplete(missing: list[str]) -> ApiError:
    return ApiError(
        409,
        "DocumentIncomplete",
        f"The document cannot be submitted; sections missing: {', '.join(missing)}.",
        [
            {"field": f"sections.{key}", "code": "missing_section", "message": "not collected yet"}
            for key in missing
        ],
    )


def _answer(
    document_id: str,
    outcome: RequestOutcome | None,
    view: DocumentView | None,
    update: DocumentUpdateEvent,
) -> func.HttpResponse:
    # Another request under the same key, sent meanwhile, was the one applied.
    refuse_reused_key(outcome, update)
    request_id = update.request_id
    if outcome is None:
        if view is None:  # purged since the route read it, and not archived
            raise document_not_found(document_id)
        if not view.is_running or view.document.state.is_closed:
            raise closed_conflict(view)
        link = f"/api/documents/{document_id}/status?requestId={request_id}"
        return json_response(
            {"requestId": request_id, "accepted": True, "statusUri": link},
            status=202,
            headers={"Location": link},
        )
    if outcome.code == "StaleRevision":
        raise ApiError(
            412,
            "StaleRevision",
            f"The document was changed meanwhile ({outcome.message}); read it again and retry.",
            [{"field": "If-Match", "code": "stale_revision", "message": outcome.message or ""}],
            headers={"ETag": f'"{outcome.revision}"'},
        )
    if outcome.code == "Incomplete":
        raise _incomplete(outcome.missing_sections)
    if not outcome.ok:
        raise ApiError(
            400,
            outcome.code or "Rejected",
            outcome.message or "rejected",
            [
                {
                    "field": "body",
                    "code": outcome.code or "rejected",
                    "message": outcome.message or "",
                }
            ],
        )
    body: dict[str, Any] = {"requestId": request_id, "revision": outcome.revision}
    if view is not None:
        body["document"] = document_body(view)
    return json_response(body, headers={"ETag": f'"{outcome.revision}"'})


async def _open_document(
    client: df.DurableOrchestrationClient,
    document_id: str,
    expected: int | None,
    update: DocumentUpdateEvent,
) -> DocumentView:
    view = await load_document(client, document_id)
    refuse_reused_key(view, update)  # first: the key's outcome may be why it is closed or stale
    if not view.is_running or view.document.state.is_closed:
        raise closed_conflict(view)
    if expected is not None and expected != view.document.revision:
        raise _stale(expected, view.document.revision)
    return view


@bp.route(route="documents/{id}", methods=["PATCH"])
@bp.durable_client_input(client_name="client")
@endpoint(
    path=_DOCUMENT,
    headers=(*_CHANGE_HEADERS, ACTOR),
    body=JsonBody(None, description="A JSON merge patch (RFC 7396) of the document."),
    responses=_CHANGED,
    errors=(403, 404, 409, 412, 422),
)
async def patch_document(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Apply a JSON merge patch; ``If-Match: <revision>`` answers 412 when stale."""
    document_id = path_id(req, "id")
    patch = read_json(req)
    if not isinstance(patch, dict):
        raise ApiError(
            400,
            "ValidationFailed",
            "The patch must be a JSON object.",
            [{"field": "body", "code": "object_expected", "message": "not an object"}],
        )
    expected = _if_match(req)
    update = DocumentUpdateEvent(
        request_id=request_id_of(req),
        action="patch",
        expected_revision=expected,
        patch=patch,
        actor=identity.resolve_actor(req, read_header(req, ACTOR), "X-Actor"),
    )
    view = await _open_document(client, document_id, expected, update)
    try:  # a dry run, so a bad patch gets its 400 without a round trip
        rules.apply_patch(view.document.model_copy(deep=True), patch, datetime.now(UTC))
    except rules.PatchRejected as error:
        raise ApiError(400, "ValidationFailed", f"{error} See details.", error.details) from error
    outcome, latest = await send_update(client, document_id, update)
    return _answer(document_id, outcome, latest, update)


@bp.route(route="documents/{id}/submit", methods=["POST"])
@bp.durable_client_input(client_name="client")
@_change(SubmitRequest)
async def submit_document(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Submit the document with the approver's decision; 409 names missing sections."""
    document_id = path_id(req, "id")
    request = read_body(req, SubmitRequest)
    approver = identity.resolve_actor(req, request.approver, "approver")
    expected = _if_match(req)
    update = DocumentUpdateEvent(
        request_id=request_id_of(req),
        action="submit",
        expected_revision=expected,
        approved=request.approved,
        approver=approver,
        comments=request.comments,
        actor=approver,
    )
    view = await _open_document(client, document_id, expected, update)
    missing = rules.missing_sections(view.document)
    if missing:
        raise _incomplete(missing)
    outcome, latest = await send_update(client, document_id, update)
    return _answer(document_id, outcome, latest, update)


async def _cascade(
    client: df.DurableOrchestrationClient,
    parent_id: str,
    request: CancelRequest,
    request_id: str,
    depth: int = 1,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    if depth > _MAX_CASCADE_DEPTH:
        return results
    for child in await in_thread(find_children, parent_id):
        entry: dict[str, Any] = {"id": child.id, "cancelled": False}
        if not child.state.is_closed:
            update = DocumentUpdateEvent(
                request_id=f"{request_id}:{child.id}",
                action="cancel",
                reason=f"parent {parent_id} cancelled: {request.reason}",
                actor=request.actor,
            )
            outcome, _ = await send_update(client, child.id, update)
            entry["cancelled"] = bool(outcome and outcome.ok)
        results.append(entry)
        results += await _cascade(client, child.id, request, request_id, depth + 1)
    return results


@bp.route(route="documents/{id}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
@_change(CancelRequest)
async def cancel_document(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Cancel the document (and, with ``cascade: true``, its child documents)."""
    document_id = path_id(req, "id")
    request = read_body(req, CancelRequest)
    request.actor = identity.resolve_actor(req, request.actor, "actor")
    request_id = request_id_of(req)
    update = DocumentUpdateEvent(
        request_id=request_id, action="cancel", reason=request.reason, actor=request.actor
    )
    await _open_document(client, document_id, _if_match(req), update)
    outcome, latest = await send_update(client, document_id, update)
    response = _answer(document_id, outcome, latest, update)
    if not request.cascade or response.status_code != 200:
        return response
    answer = json.loads(response.get_body())
    answer["cascaded"] = await _cascade(client, document_id, request, request_id)
    return json_response(answer, headers={"ETag": f'"{answer["revision"]}"'})
