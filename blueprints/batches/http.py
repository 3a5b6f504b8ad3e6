"""HTTP routes of the batch workflow.

Routes (all under ``/api``)::

    PUT  batches/inputs/{name}       upload a JSON-lines input blob
    POST batches                     start a job (202 check-status response)
    GET  batches/{jobId}             progress while running (202), summary when done (200)
    POST batches/{jobId}/cancel      stop scheduling new chunks; the job reports what was done
    GET  batches/{jobId}/report      the report blob
"""

import functools
import json
import logging
import uuid

import azure.durable_functions as df
import azure.functions as func

from blueprints.app_storage import in_thread
from blueprints.async_api import polling_response, runtime_status_name
from blueprints.batches import store
from blueprints.batches.orchestrator import CANCEL_EVENT
from blueprints.batches.processing import input_lines
from blueprints.batches.progress import batch_view
from blueprints.http_errors import ApiError, json_response
from blueprints.http_input import JsonBody, TextBody, endpoint, path_id, read_body, read_text
from blueprints.instance_status import (
    ACTIVE_STATUSES,
    raise_or_refuse,
    refuse_foreign_instance,
    require_instance_of,
    require_unfinished,
    running_conflict,
    runtime_status,
    start_or_refuse,
)
from models.batches import BatchCancelEvent, BatchDataSource, BatchInput, BatchRequest
from models.responses import (
    BatchCancelAccepted,
    BatchInputStored,
    BatchReport,
    BatchView,
    CheckStatusResponse,
)

logger = logging.getLogger(__name__)

bp = df.Blueprint()

# Inputs and inline items are bulk data (up to 100,000 records): a larger body than the
# API's default, still well under the host's 100 MB.
MAX_BATCH_BODY_BYTES = 64 * 1024 * 1024
_JOB = {"jobId": "job"}
_JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/json", "text/plain")


@bp.route(route="batches/inputs/{name}", methods=["PUT"])
@endpoint(
    path={"name": "input"},
    body=TextBody(_JSON_LINES, MAX_BATCH_BODY_BYTES, "JSON lines: one record a line."),
    responses={201: BatchInputStored},
)
async def upload_batch_input(req: func.HttpRequest) -> func.HttpResponse:
    """Store the body (UTF-8 JSON lines, one record per line) as an input blob."""
    name = path_id(req, "name")
    text = read_text(req)  # UTF-8 checked at the boundary: a bad byte is refused, not replaced
    blob_name = store.input_blob(name)
    await in_thread(store.write_text, blob_name, text)
    size = len(text.encode("utf-8"))
    body = {"blobName": blob_name, "items": len(input_lines(None, text)), "bytes": size}
    return json_response(body, status=201, headers={"Location": f"/api/batches/inputs/{name}"})


def _running(job_id: str, current: str) -> ApiError:
    message = f"Batch job '{job_id}' is already {current}; poll it or cancel it first."
    return running_conflict(
        "JobAlreadyRunning", message, "jobId", current, f"/api/batches/{job_id}"
    )


@bp.route(route="batches", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(
    body=JsonBody(BatchRequest, MAX_BATCH_BODY_BYTES),
    responses={202: CheckStatusResponse},
    errors=(409,),
)
async def start_batch(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start a batch job under its job ID; answers 202 with the status URLs."""
    request = read_body(req, BatchRequest)
    existing = await client.get_status(request.job_id)
    refuse_foreign_instance(existing, "batch_job", request.job_id, "jobId")
    current = runtime_status(existing) if existing else None
    if current in ACTIVE_STATUSES:
        raise _running(request.job_id, current.value)
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
        # episode, and 10,000 records there would make each one slow. One blob per request:
        # a concurrent start of the same job must not replace the items of the one that wins.
        staged = store.staged_input_blob(request.job_id, uuid.uuid4().hex)
        await in_thread(store.write_text, staged, "\n".join(input_lines(source.items, None)))
        source = BatchDataSource(blob_name=staged)
    job = BatchInput.model_validate(
        {**request.to_wire(), "dataSource": source.to_wire(), "runId": uuid.uuid4().hex}
    )
    running = functools.partial(_running, request.job_id)
    await start_or_refuse(client, "batch_job", request.job_id, job.to_wire(), running)
    logger.info("Started batch job %s", request.job_id)
    return client.create_check_status_response(req, request.job_id)


@bp.route(route="batches/{jobId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@endpoint(path=_JOB, responses={200: BatchView, 202: BatchView}, errors=(404,))
async def get_batch(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Return a job's progress (202 while running) or its summary (200 when done)."""
    status = await require_instance_of(client, path_id(req, "jobId"), "batch_job")
    return polling_response(req, status, await batch_view(client, status))


@bp.route(route="batches/{jobId}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(
    path=_JOB,
    body=JsonBody(BatchCancelEvent),
    responses={202: BatchCancelAccepted},
    errors=(404, 410),
)
async def cancel_batch(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Ask a running job to stop scheduling chunks; it finishes in-flight ones and reports."""
    job_id = path_id(req, "jobId")
    event = read_body(req, BatchCancelEvent)
    status = await require_instance_of(client, job_id, "batch_job")
    require_unfinished(job_id, status, "there is nothing left to cancel")
    # The job may finish between the check and the raise: 410, not a 500.
    await raise_or_refuse(
        client, job_id, CANCEL_EVENT, event.to_wire(), "there is nothing left to cancel"
    )
    body = {"jobId": job_id, "cancelRequested": True, "runtimeStatus": runtime_status_name(status)}
    return json_response(body, status=202, headers={"Location": f"/api/batches/{job_id}"})


@bp.route(route="batches/{jobId}/report", methods=["GET"])
@endpoint(path=_JOB, responses={200: BatchReport}, errors=(404,))
async def get_batch_report(req: func.HttpRequest) -> func.HttpResponse:
    """Return a job's report once it has been written."""
    job_id = path_id(req, "jobId")
    text = await in_thread(store.read_text, store.report_blob(job_id))
    if text is None:
        raise ApiError(
            404,
            "ReportNotFound",
            f"Batch job '{job_id}' has no report yet; it is written when the job ends.",
            [{"field": "jobId", "code": "not_found", "message": "no report for this job"}],
        )
    return json_response(json.loads(text))
