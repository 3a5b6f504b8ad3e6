"""Raising an external event: ``POST /api/instances/{instanceId}/events/{eventName}``.

The payload is validated against the model the instance's orchestrator registered for that
event (models.registry) before it is raised, so an orchestrator never waits on a payload it
cannot read. The event is raised under its registered spelling, because
``wait_for_external_event`` matches names exactly while callers may not.

The Python client encodes event data twice (protocol notes §2.6), so orchestrators read the
payload with ``models.common.parse_event``. An event that names a person (its model declares
``identity_fields``: who approved, who wrote the feedback) is checked against the caller's
principal first (``blueprints.identity``).

An event that a workflow routes through its own endpoint (``register_workflow(routes=...)``:
an order's approval, a human approval...) is refused here with 403 naming that endpoint. Its
route checks what this one cannot (the stage that waits for it, who may decide) and answers
with what became of the request; raised here, it would answer 202 and might be dropped or
buffered for a wait nobody has seen yet.
"""

import logging

import azure.durable_functions as df
import azure.functions as func

from blueprints import identity
from blueprints.http_errors import ApiError, json_response, validate_model
from blueprints.http_input import JsonBody, endpoint, path_id, read_json
from blueprints.instance_status import raise_or_refuse, require_instance, require_unfinished
from models.registry import get_workflow
from models.responses import EventAccepted

logger = logging.getLogger(__name__)

bp = df.Blueprint()


_NO_MORE_EVENTS = "it no longer accepts events"


@bp.route(route="instances/{instanceId}/events/{eventName}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(
    path={"instanceId": "instance", "eventName": "event"},
    body=JsonBody(None, description="The payload, validated against the event's model."),
    responses={202: EventAccepted},
    errors=(403, 404, 410),
)
async def raise_event(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Validate an event payload against the instance's event model and raise it."""
    # The grammar of the instanceId refuses entity IDs: entities take events on their own routes.
    instance_id = path_id(req, "instanceId")
    event_name = path_id(req, "eventName")
    body = read_json(req)

    status = await require_instance(client, instance_id)
    orchestrator = status.name or ""
    spec = get_workflow(orchestrator)
    event = spec.find_event(event_name) if spec else None
    if event is None:
        accepted = spec.event_names if spec else []
        raise ApiError(
            400,
            "UnknownEvent",
            f"Orchestrator '{orchestrator}' accepts no event named '{event_name}'. "
            f"Accepted events: {', '.join(accepted) or '(none)'}.",
            [
                {
                    "field": "eventName",
                    "code": "unknown_event",
                    "message": f"'{event_name}' is not an event of '{orchestrator}'",
                    "accepted": accepted,
                }
            ],
        )
    registered_name, model = event
    route = spec.route_for(registered_name, instance_id) if spec else None
    if route is not None:
        raise ApiError(
            403,
            "EventHasOwnRoute",
            f"'{registered_name}' is raised on '{orchestrator}' through {route}, which checks "
            "that the instance waits for it and who sends it, and answers with its outcome.",
            [
                {
                    "field": "eventName",
                    "code": "use_route",
                    "message": f"use {route}",
                    "route": route,
                }
            ],
        )

    require_unfinished(instance_id, status, _NO_MORE_EVENTS)

    payload = identity.bind_identities(req, validate_model(model, body))
    # The instance may finish or vanish between the status check and the raise.
    wire = payload.model_dump(mode="json", by_alias=True)
    await raise_or_refuse(client, instance_id, registered_name, wire, _NO_MORE_EVENTS)
    logger.info("Raised event %s on instance %s", registered_name, instance_id)
    return json_response(
        {"id": instance_id, "eventName": registered_name, "accepted": True}, status=202
    )
