"""Instance management: list, read, terminate, suspend, resume and purge orchestration instances.

Routes (all under ``/api``)::

    GET    instances                      list, filtered and paged with a continuation token
    GET    instances/{instanceId}         one instance's status (``?history=true`` adds history)
    POST   instances/{instanceId}/terminate
    POST   instances/{instanceId}/suspend
    POST   instances/{instanceId}/resume
    DELETE instances/{instanceId}         purge a finished instance's history

Commands take an optional ``reason``, as JSON body ``{"reason": "..."}`` or query parameter.

These routes serve instances of workflows registered ``public`` only (models.registry): entity
IDs (``@name@key``) are refused with 400 and other instances (orders, approvals, documents,
sub-orchestrations) answer 404, so nothing here stops or purges what another route owns.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import azure.durable_functions as df
import azure.functions as func

from blueprints.http_errors import (
    ApiError,
    json_errors,
    json_response,
    read_json_body,
    validate_model,
)
from blueprints.instance_listing import CONTINUATION_HEADER, fetch_instances
from blueprints.instance_status import (
    instance_finished,
    instance_not_found,
    require_public_instance,
    runtime_status,
    status_view,
)
from models.management import (
    InstanceCommand,
    InstanceListQuery,
    InstanceStatusQuery,
    RuntimeStatus,
)

logger = logging.getLogger(__name__)

bp = df.Blueprint()


@bp.route(route="instances", methods=["GET"])
@bp.durable_client_input(client_name="client")
@json_errors
async def list_instances(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """List instances by name, status, creation time and ID prefix, one page at a time."""
    params: dict[str, Any] = dict(req.params)
    header_token = req.headers.get(CONTINUATION_HEADER)
    if header_token and "continuationToken" not in params:
        params["continuationToken"] = header_token
    query = validate_model(InstanceListQuery, params, source="query")
    page = await fetch_instances(client, query)
    headers = {CONTINUATION_HEADER: page.continuation_token} if page.continuation_token else {}
    return json_response(
        {"instances": page.instances, "continuationToken": page.continuation_token},
        headers=headers,
    )


@bp.route(route="instances/{instanceId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@json_errors
async def get_instance(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Return one instance's status, with its history when ``history=true``."""
    query = validate_model(InstanceStatusQuery, dict(req.params), source="query")
    status = await require_public_instance(
        client, req.route_params["instanceId"], show_history=query.history
    )
    return json_response(status_view(status, include_history=query.history))


@bp.route(route="instances/{instanceId}/terminate", methods=["POST"])
@bp.durable_client_input(client_name="client")
@json_errors
async def terminate_instance(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Terminate a running, pending or suspended instance."""
    return await _run_command(req, client, "terminate", client.terminate)


@bp.route(route="instances/{instanceId}/suspend", methods=["POST"])
@bp.durable_client_input(client_name="client")
@json_errors
async def suspend_instance(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Suspend a running instance until it is resumed."""
    return await _run_command(req, client, "suspend", client.suspend)


@bp.route(route="instances/{instanceId}/resume", methods=["POST"])
@bp.durable_client_input(client_name="client")
@json_errors
async def resume_instance(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Resume a suspended instance."""
    return await _run_command(req, client, "resume", client.resume)


@bp.route(route="instances/{instanceId}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
@json_errors
async def purge_instance(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Delete a finished instance's history and status."""
    instance_id = req.route_params["instanceId"]
    status = await require_public_instance(client, instance_id)
    current = runtime_status(status)
    if current is None or not current.is_finished:
        # Purging a live instance would leave its queued work running against no history.
        raise _wrong_state(instance_id, current, "purged", "terminate it first")
    result = await client.purge_instance_history(instance_id)
    if not result.instances_deleted:
        raise instance_not_found(instance_id)
    logger.info("Purged instance %s", instance_id)
    return json_response({"id": instance_id, "instancesDeleted": result.instances_deleted})


_PAST_TENSE = {"terminate": "Terminated", "suspend": "Suspended", "resume": "Resumed"}


def _reason(req: func.HttpRequest, command: str) -> str:
    body = validate_model(InstanceCommand, read_json_body(req))
    return body.reason or req.params.get("reason") or f"{_PAST_TENSE[command]} via the HTTP API"


def _wrong_state(
    instance_id: str, current: RuntimeStatus | None, verb: str, remedy: str
) -> ApiError:
    state = current.value if current else "in an unknown state"
    return ApiError(
        409,
        "InvalidInstanceState",
        f"Instance '{instance_id}' is {state} and cannot be {verb}; {remedy}.",
        [{"field": "instanceId", "code": "invalid_state", "message": f"instance is {state}"}],
    )


def _check_command_allowed(instance_id: str, command: str, current: RuntimeStatus | None) -> None:
    if current is not None and current.is_finished:
        raise instance_finished(instance_id, current.value, f"there is nothing to {command}")
    # The host answers 500 for these two; they are the caller's mistake, so say so.
    if command == "suspend" and current is RuntimeStatus.SUSPENDED:
        raise _wrong_state(instance_id, current, "suspended", "it is already suspended")
    if command == "resume" and current is not RuntimeStatus.SUSPENDED:
        raise _wrong_state(instance_id, current, "resumed", "only a suspended instance resumes")


def _instance_url(req: func.HttpRequest) -> str:
    # The command URL is the instance URL plus one segment: /api/instances/{id}/terminate.
    parts = urlsplit(req.url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rsplit("/", 1)[0], "", ""))


async def _run_command(
    req: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    command: str,
    send: Callable[[str, str], Awaitable[None]],
) -> func.HttpResponse:
    instance_id = req.route_params["instanceId"]
    reason = _reason(req, command)
    status = await require_public_instance(client, instance_id)
    _check_command_allowed(instance_id, command, runtime_status(status))
    await send(instance_id, reason)
    logger.info("Sent %s to instance %s: %s", command, instance_id, reason)
    status_url = _instance_url(req)
    return json_response(
        {"id": instance_id, "action": command, "reason": reason, "statusQueryGetUri": status_url},
        status=202,
        headers={"Location": status_url},
    )
