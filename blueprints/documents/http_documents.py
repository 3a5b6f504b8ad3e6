"""Creating, listing and reading documents: ``POST|GET /api/documents``,
``GET /api/documents/{id}`` and ``GET /api/documents/{id}/status``."""

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from blueprints.app_storage import in_thread
from blueprints.documents import rules
from blueprints.documents.orchestrator import ORCHESTRATOR
from blueprints.documents.store import list_documents, read_archive
from blueprints.documents.views import document_body, find_document, load_document
from blueprints.http_errors import ApiError, json_response, list_page_response
from blueprints.http_input import JsonBody, endpoint, path_id, read_body, read_query
from models.documents import (
    CreateDocumentRequest,
    DocumentInput,
    DocumentListQuery,
    DocumentPage,
    DocumentStatusQuery,
)
from models.responses import CheckStatusResponse, DocumentBody, DocumentStatusBody

logger = logging.getLogger(__name__)

bp = df.Blueprint()


def _field_error(field: str, code: str, message: str, status: int = 400) -> ApiError:
    error_code = "ValidationFailed" if status == 400 else "DocumentExists"
    return ApiError(
        status,
        error_code,
        f"{field}: {message}.",
        [{"field": field, "code": code, "message": message}],
    )


def _exists(document_id: str) -> ApiError:
    return _field_error("id", "document_exists", f"document '{document_id}' exists", 409)


async def _refuse_existing(client: df.DurableOrchestrationClient, document_id: str) -> None:
    status = await client.get_status(document_id)
    if status or await in_thread(read_archive, document_id) is not None:
        raise _exists(document_id)


_DOCUMENT = {"id": "document"}


@bp.route(route="documents", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(body=JsonBody(CreateDocumentRequest), responses={202: CheckStatusResponse}, errors=(409,))
async def create_document(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Create a document and start its orchestration; 202 with the check-status payload."""
    request = read_body(req, CreateDocumentRequest)
    document_id = request.id or uuid.uuid4().hex
    if request.id is not None:
        await _refuse_existing(client, document_id)
    if request.parent_id is not None and await find_document(client, request.parent_id) is None:
        raise _field_error("parentId", "not_found", f"no document '{request.parent_id}'")
    template = None
    if request.from_document_id is not None:
        source = await find_document(client, request.from_document_id)
        if source is None:
            raise _field_error(
                "fromDocumentId", "not_found", f"no document '{request.from_document_id}'"
            )
        template = source.document
    now = datetime.now(UTC)
    document = rules.new_document(request, document_id, now, template)
    state = DocumentInput(document=document)
    try:
        await client.start_new(ORCHESTRATOR, instance_id=document_id, client_input=state.to_wire())
    except Exception as error:
        # Two creates with the same ID race past the check; the host refuses the second.
        if "already exists" in str(error):
            raise _exists(document_id) from error
        raise
    logger.info("Created document %s", document_id)
    return client.create_check_status_response(req, document_id)


@bp.route(route="documents", methods=["GET"])
@endpoint(query=DocumentListQuery, responses={200: DocumentPage})
async def list_documents_route(req: func.HttpRequest) -> func.HttpResponse:
    """List documents: ``?state=&creator=&applicationId=&title=&createdFrom=&createdTo=&top=``."""
    return await list_page_response(read_query(req, DocumentListQuery), list_documents)


@bp.route(route="documents/{id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@endpoint(path=_DOCUMENT, responses={200: DocumentBody}, errors=(404,))
async def read_document(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Return the whole document (sections, audit trail, links), archived or live."""
    view = await load_document(client, path_id(req, "id"))
    return json_response(document_body(view), headers={"ETag": f'"{view.document.revision}"'})


@bp.route(route="documents/{id}/status", methods=["GET"])
@bp.durable_client_input(client_name="client")
@endpoint(
    path=_DOCUMENT,
    query=DocumentStatusQuery,
    responses={200: DocumentStatusBody},
    errors=(404,),
)
async def read_document_status(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Return the lifecycle state and stage; ``?requestId=`` adds that request's outcome."""
    view = await load_document(client, path_id(req, "id"))
    document = view.document
    body: dict[str, Any] = {
        "id": document.id,
        "state": document.state.value,
        "stage": document.stage,
        "revision": document.revision,
        "missingSections": rules.missing_sections(document),
        "runtimeStatus": view.runtime_status,
        "archived": view.source == "archive",
    }
    request_id = read_query(req, DocumentStatusQuery).request_id
    if request_id:
        outcome = next((o for o in view.outcomes if o.request_id == request_id), None)
        body["request"] = outcome.to_wire() if outcome else None
    return json_response(body, headers={"ETag": f'"{document.revision}"'})
