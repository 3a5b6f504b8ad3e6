"""HTTP routes of the batch workflow.

Routes (all under ``/api``)::

    PUT  batches/inputs/{name}       upload a JSON-lines input blob
    POST batches                     start a job (202 check-status response)
    GET  batches/{jobId}             progress while running (202), summary when done (200)
    POST batches/{jobId}/cancel      stop scheduling new chunks; the job reports what was done
    GET  batches/{jobId}/report      the report blob
"""

import json
import logging

import azure.durable_functions as df
import azure.functions as func

from blueprints.app_storage import in_thread
from blueprints.async_api import polling_response, runtime_status_name
from blueprints.batches import store
from blueprints.batches.orchestrator import CANCEL_EVENT
from blueprints.batches.processing import InvalidEncodingError, decode_input, input_lines
from blueprints.batches.progress import batch_view
from blueprints.http_errors import (
    ApiError,
    json_errors,
    json_response,
    read_json_body,
    validate_model,
)
from blueprints.instance_status import (
    ACTIVE_STATUSES,
    refuse_foreign_instance,
    require_instance_of,
    require_unfinished,
    runtime_status,
)
from blueprints.route_ids import require_id
from models.batches import BatchCancelEvent, BatchDataSource, BatchInput, BatchRequest

logger = logging.getLogger(__name__)

bp = df.Blueprint()


@bp.route(route="batches/inputs/{name}", methods=["PUT"])
@json_errors
async def upload_batch_input(req: func.HttpRequest) -> func.HttpResponse:
    """Store the body (UTF-8 JSON lines, one record per line) as an input blob."""
    name = require_id(req.route_params["name"], "input", "name")
    raw = req.get_body()
    try:
        text = decode_input(raw)
    except InvalidEncodingError as error:
        raise ApiError(
            400,
            "InvalidEncoding",
            f"The input must be UTF-8 text (JSON lines): {error}; nothing was stored.",
            [{"field": "body", "code": "invalid_utf8", "message": str(error)}],
        ) from None
    blob_name = store.input_blob(name)
    await in_thread(store.write_text, blob_name, text)
    body = {"blobName": blob_name, "items": len(input_lines(None, text)), "bytes": len(raw)}
    return json_response(body, status=201, headers={"Location": f"/api/batches/inputs/{name}"})


@bp.route(route="batches", methods=["POST"])
@bp.durable_client_input(client_name="client")
@json_errors
async def start_batch(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start a batch job under its job ID; answers 202 with the status URLs."""
    request = validate_model(BatchRequest, read_json_body(req))
    existing = await client.get_status(request.job_id)
    refuse_foreign_instance(existing, "batch_job", request.job_id, "jobId")
    current = runtime_status(existing) if existing else None
    if current in ACTIVE_STATUSES:
        raise ApiError(
            409,
            "JobAlreadyRunning",
            f"Batch job '{request.job_id}' is already {current}; poll it or cancel it first.",
            [{"field": "jobId", "code": "instance_running", "message": f"job is {current}"}],
            headers={"Location": f"/api/batches/{request.job_id}"},
        )
    source = request.data_source
    if source.blob_name is not None and not source.blob_name.startswith(store.INPUTS_PREFIX):
        # A caller's job reads an input the caller uploaded, not another job's blobs.
        raise ApiError(
            400,
            "ValidationFailed",
            f"dataSource.blobName must name an uploaded input ('{store.INPUTS_PREFIX}<name>').",
            [{"field": "dataSource.blobName", "code": "not_an_input", "message": "not an input"}],
        )
    if source.blob_name is not None and not await in_thread(store.blob_exists, source.blob_name):
        message = f"no blob '{source.blob_name}' in the '{store.BATCH_CONTAINER}' container"
        raise ApiError(
            400,
            "ValidationFailed",
            f"dataSource.blobName: {message}; upload it with PUT /api/batches/inputs/{{name}}.",
            [{"field": "dataSource.blobName", "code": "not_found", "message": message}],
        )
    if source.items is not None:
        # Inline items go to a blob first: an orchestration input is replayed with every
        # episode, and 10,000 records there would make each one slow.
        staged = store.staged_input_blob(request.job_id)
        await in_thread(store.write_text, staged, "\n".join(input_lines(source.items, None)))
        source = BatchDataSource(blob_name=staged)
    job = BatchInput.model_validate({**request.to_wire(), "dataSource": source.to_wire()})
    await client.start_new("batch_job", instance_id=request.job_id, client_input=job.to_wire())
    logger.info("Started batch job %s", request.job_id)
    return client.create_check_status_response(req, request.job_id)


@bp.route(route="batches/{jobId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@json_errors
async def get_batch(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Return a job's progress (202 while running) or its summary (200 when done)."""
    status = await require_instance_of(client, req.route_params["jobId"], "batch_job")
    return polling_response(req, status, await batch_view(client, status))


@bp.route(route="batches/{jobId}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
@json_errors
async def cancel_batch(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Ask a running job to stop scheduling chunks; it finishes in-flight ones and reports."""
    job_id = req.route_params["jobId"]
    event = validate_model(BatchCancelEvent, read_json_body(req))
    status = await require_instance_of(client, job_id, "batch_job")
    require_unfinished(job_id, status, "there is nothing left to cancel")
    await client.raise_event(job_id, CANCEL_EVENT, event.to_wire())
    body = {"jobId": job_id, "cancelRequested": True, "runtimeStatus": runtime_status_name(status)}
    return json_response(body, status=202, headers={"Location": f"/api/batches/{job_id}"})


@bp.route(route="batches/{jobId}/report", methods=["GET"])
@json_errors
async def get_batch_report(req: func.HttpRequest) -> func.HttpResponse:
    """Return a job's report once it has been written."""
    job_id = require_id(req.route_params["jobId"], "job", "jobId")
    text = await in_thread(store.read_text, store.report_blob(job_id))
    if text is None:
        raise ApiError(
            404,
            "ReportNotFound",
            f"Batch job '{job_id}' has no report yet; it is written when the job ends.",
            [{"field": "jobId", "code": "not_found", "message": "no report for this job"}],
        )
    return json_response(json.loads(text))
