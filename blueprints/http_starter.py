"""The generic HTTP starter: ``POST /api/orchestrators/{name}[/{instanceId}]``.

Only orchestrators registered ``public`` (models.registry) can be started here. The body is
validated against the input model the orchestrator registered before anything is started, and
the instance starts with that model's JSON. The answer is the durable extension's standard 202
check-status response (``id``, ``statusQueryGetUri``,
``sendEventPostUri``, ``terminatePostUri``, ``purgeHistoryDeleteUri``... with ``Location`` and
``Retry-After``).

Two routes rather than one with an optional ``{instanceId?}`` segment, so any host that
understands plain route templates serves both.
"""

import logging
from typing import NoReturn

import azure.durable_functions as df
import azure.functions as func

from blueprints.http_errors import ApiError, json_errors, read_json_body, validate_model
from blueprints.instance_status import (
    ACTIVE_STATUSES,
    refuse_foreign_instance,
    runtime_status,
    validate_instance_id,
)
from models.registry import WorkflowSpec, get_public_workflow, registered_workflows

logger = logging.getLogger(__name__)

bp = df.Blueprint()


@bp.route(route="orchestrators/{name}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@json_errors
async def start_orchestration(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start an orchestration with a validated input under a generated instance ID."""
    return await _start(req, client, req.route_params["name"], instance_id=None)


@bp.route(route="orchestrators/{name}/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@json_errors
async def start_orchestration_with_id(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start an orchestration with a validated input under the caller's instance ID."""
    return await _start(
        req, client, req.route_params["name"], instance_id=req.route_params["instanceId"]
    )


def _find_workflow(name: str) -> WorkflowSpec:
    # An internal workflow answers as an unknown one: it is not started from outside, and the
    # answer does not tell a caller which internal names exist.
    spec = get_public_workflow(name)
    if spec is None:
        accepted = [workflow.name for workflow in registered_workflows() if workflow.public]
        raise ApiError(
            404,
            "UnknownOrchestrator",
            f"No orchestrator named '{name}' can be started here. "
            f"Accepted names: {', '.join(accepted) or '(none)'}.",
            [
                {
                    "field": "name",
                    "code": "unknown_orchestrator",
                    "message": f"'{name}' is not a registered orchestrator",
                    "accepted": accepted,
                }
            ],
        )
    return spec


async def _refuse_if_running(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, instance_id: str, spec_name: str
) -> None:
    status = await client.get_status(instance_id)
    refuse_foreign_instance(status, spec_name, instance_id, "instanceId")
    current = runtime_status(status) if status else None
    if current is not None and current in ACTIVE_STATUSES:
        _raise_conflict(req, client, instance_id, current.value)


def _raise_conflict(
    req: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    instance_id: str,
    current: str,
) -> NoReturn:
    status_url = client.get_client_response_links(req, instance_id)["statusQueryGetUri"]
    raise ApiError(
        409,
        "InstanceAlreadyRunning",
        f"Instance '{instance_id}' is already {current}; its status is at {status_url}. "
        "Wait for it to finish, terminate it, or start under another instance ID.",
        [
            {
                "field": "instanceId",
                "code": "instance_running",
                "message": f"instance is {current}",
                "statusQueryGetUri": status_url,
            }
        ],
        headers={"Location": status_url},
    )


async def _start(
    req: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    name: str,
    instance_id: str | None,
) -> func.HttpResponse:
    spec = _find_workflow(name)
    if instance_id is not None:
        validate_instance_id(instance_id)
    orchestration_input = validate_model(spec.input_model, read_json_body(req))
    if instance_id is not None:
        await _refuse_if_running(req, client, instance_id, spec.name)
    try:
        instance_id = await client.start_new(
            spec.name,
            instance_id=instance_id,
            client_input=orchestration_input.model_dump(mode="json", by_alias=True),
        )
    except Exception as error:
        # Another start may win the race after the status check; the host then refuses with
        # "An Orchestration instance with the status Running already exists." (a 500).
        if instance_id is not None and "already exists" in str(error):
            _raise_conflict(req, client, instance_id, "Running")
        raise
    logger.info("Started orchestration %s with instance ID %s", spec.name, instance_id)
    return client.create_check_status_response(req, instance_id)
