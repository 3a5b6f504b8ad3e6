"""The human-interaction recipe: ``human_approval`` races ``ApprovalEvent`` against a durable timer.

``POST /api/start-approval`` (optional body ``{"timeoutSeconds": 300}``) starts it;
``POST /api/approve/{instanceId}`` raises the event. The output is ``"Approved"`` or
``"Timed out"``; the timer that loses is cancelled, so an approved instance completes at once
rather than when its timer would have fired.
"""

import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from blueprints import identity
from blueprints.http_errors import ApiError, json_response
from blueprints.http_input import JsonBody, endpoint, path_id, read_body
from blueprints.instance_status import (
    raise_event_unless_finished,
    require_instance,
    require_unfinished,
)
from blueprints.log_fields import log_fields, milliseconds
from models.approvals import (
    HUMAN_APPROVAL_EVENT,
    HUMAN_APPROVAL_ORCHESTRATOR,
    HumanApprovalEvent,
    HumanApprovalInput,
)
from models.registry import register_workflow
from models.responses import CheckStatusResponse, EventAccepted

logger = logging.getLogger(__name__)

bp = df.Blueprint()

register_workflow(
    HUMAN_APPROVAL_ORCHESTRATOR,
    HumanApprovalInput,
    events={HUMAN_APPROVAL_EVENT: HumanApprovalEvent},
    public=True,
)


@bp.orchestration_trigger(context_name="context")
def human_approval(context: df.DurableOrchestrationContext) -> Generator[Any, Any, str]:
    """Wait for ``ApprovalEvent`` until the timeout; say which came first.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        The orchestration context; its input is a :class:`~models.approvals.HumanApprovalInput`
        as JSON (or nothing, for the defaults).

    Returns
    -------
    str
        ``"Approved"`` or ``"Timed out"``.
    """
    request = HumanApprovalInput.model_validate(context.get_input(expected_type=dict) or {})
    deadline = context.current_utc_datetime + timedelta(seconds=request.timeout_seconds)
    context.set_custom_status({"stage": "awaiting_approval", "deadline": deadline.isoformat()})
    approval = context.wait_for_external_event(HUMAN_APPROVAL_EVENT)
    timeout = context.create_timer(deadline)
    winner = yield context.task_any([approval, timeout])
    if winner is approval:
        # A pending timer would keep the instance running until it fires.
        timeout.cancel()
        outcome = "Approved"
    else:
        outcome = "Timed out"
    context.set_custom_status({"stage": "completed", "outcome": outcome})
    if not context.is_replaying:
        logger.info(
            "human_approval ended %s",
            log_fields(
                instanceId=context.instance_id,
                workflow="human_approval",
                event="ended",
                outcome=outcome,
                durationMs=milliseconds(
                    deadline - timedelta(seconds=request.timeout_seconds),
                    context.current_utc_datetime,
                ),
            ),
        )
    return outcome


@bp.route(route="start-approval", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(body=JsonBody(HumanApprovalInput), responses={202: CheckStatusResponse})
async def start_human_approval(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start a ``human_approval`` (body optional: ``{"timeoutSeconds": 300}``)."""
    request = read_body(req, HumanApprovalInput)
    instance_id = await client.start_new(
        HUMAN_APPROVAL_ORCHESTRATOR, client_input=request.to_wire()
    )
    logger.info("Started human_approval %s", instance_id)
    return client.create_check_status_response(req, instance_id)


@bp.route(route="approve/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(
    path={"instanceId": "instance"},
    body=JsonBody(HumanApprovalEvent),
    responses={202: EventAccepted},
    errors=(403, 404, 410),
)
async def approve(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Raise ``ApprovalEvent`` on a waiting ``human_approval`` (body optional: ``{"approver"}``)."""
    instance_id = path_id(req, "instanceId")
    event = identity.bind_identities(req, read_body(req, HumanApprovalEvent))
    status = await require_instance(client, instance_id)
    if status.name != HUMAN_APPROVAL_ORCHESTRATOR:
        raise ApiError(
            404,
            "ApprovalNotFound",
            f"Instance '{instance_id}' is not a human_approval.",
            [{"field": "instanceId", "code": "not_found", "message": "not a human_approval"}],
        )
    refusal = "it no longer accepts approvals"
    require_unfinished(instance_id, status, refusal)
    await raise_event_unless_finished(
        client, instance_id, HUMAN_APPROVAL_EVENT, event.to_wire(), refusal
    )
    return json_response(
        {"id": instance_id, "eventName": HUMAN_APPROVAL_EVENT, "accepted": True}, status=202
    )
