"""The human-interaction recipe: ``human_approval`` races ``ApprovalEvent`` against a durable timer.

``POST /api/start-approval`` (optional body ``{"timeoutSeconds": 300}``) starts it;
``POST /api/approve/{instanceId}`` raises the event. The output is ``"Approved"`` or
``"Timed out"``; the timer that loses is cancelled, so an approved instance completes at once
rather than when its timer would have fired.

An approval carries a request ID (the ``Idempotency-Key`` header, or a new one); the custom
status names the request that was taken, so the route answers with what became of it: 200
taken, 409 refused with the reason (another approval was taken first, or the timer won), 202
with ``outcomeUri`` while the instance has not taken it yet. Of two approvals posted at once,
one is taken and the other refused: none is dropped without an answer.
"""

import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any, Literal

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from pydantic import ValidationError

from blueprints import identity
from blueprints.async_api import is_finished
from blueprints.http_errors import ApiError
from blueprints.http_headers import IDEMPOTENCY_KEY
from blueprints.http_input import JsonBody, endpoint, path_id, read_body
from blueprints.instance_status import instance_not_found, require_instance
from blueprints.key_reuse import refuse_reused_key
from blueprints.log_fields import log_fields, milliseconds
from blueprints.request_outcomes import (
    Outcome,
    await_settled,
    outcome_response,
    refusal_error,
    request_id_of,
)
from models.approvals import (
    HUMAN_APPROVAL_EVENT,
    HUMAN_APPROVAL_ORCHESTRATOR,
    HumanApprovalEvent,
    HumanApprovalInput,
    HumanApprovalOutcome,
    HumanApprovalStatus,
)
from models.common import decode_json_text, parse_event
from models.registry import register_workflow
from models.responses import CheckStatusResponse

logger = logging.getLogger(__name__)

bp = df.Blueprint()

WAIT_SETTING = "HUMAN_APPROVAL_WAIT_SECONDS"
_DEFAULT_WAIT_SECONDS = 5.0
# 200 with the outcome, or 202 while the instance has not taken the approval yet.
_OUTCOME = {200: HumanApprovalOutcome, 202: HumanApprovalOutcome}

register_workflow(
    HUMAN_APPROVAL_ORCHESTRATOR,
    HumanApprovalInput,
    events={HUMAN_APPROVAL_EVENT: HumanApprovalEvent},
    public=True,
    routes={HUMAN_APPROVAL_EVENT: "POST /api/approve/{instanceId}"},
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
    status = HumanApprovalStatus(stage="awaiting_approval", deadline=deadline)
    context.set_custom_status(status.to_wire())
    approval = context.wait_for_external_event(HUMAN_APPROVAL_EVENT)
    timeout = context.create_timer(deadline)
    winner = yield context.task_any([approval, timeout])
    status.stage = "completed"
    if winner is approval:
        # A pending timer would keep the instance running until it fires.
        timeout.cancel()
        outcome: Literal["Approved", "Timed out"] = "Approved"
        event = _approval_of(approval.result)
        status.approver, status.request_id = event.approver, event.request_id
    else:
        outcome = "Timed out"
    status.outcome = outcome
    context.set_custom_status(status.to_wire())
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


def _approval_of(payload: object) -> HumanApprovalEvent:
    try:
        return parse_event(HumanApprovalEvent, payload)
    except ValidationError:
        # Only an operator's raw raise (the monitor) gets here; it approves, naming nobody.
        return HumanApprovalEvent()


def _read_outcome(status: DurableOrchestrationStatus, request_id: str) -> HumanApprovalOutcome:
    try:
        custom = HumanApprovalStatus.model_validate(decode_json_text(status.custom_status))
    except ValidationError:
        custom = None

    def outcome(
        kind: str, code: str | None = None, reason: str | None = None
    ) -> HumanApprovalOutcome:
        return HumanApprovalOutcome(
            instance_id=status.instance_id,
            request_id=request_id,
            outcome=kind,  # type: ignore[arg-type]
            code=code,
            reason=reason,
            approver=custom.approver if custom else None,
        )

    if custom is not None and custom.outcome == "Approved":
        if custom.request_id == request_id:
            return outcome("accepted")
        by = f" by {custom.approver}" if custom.approver else ""
        return outcome("refused", "AlreadyDecided", f"it was already approved{by}")
    if custom is not None and custom.outcome == "Timed out":
        return outcome("refused", "NotAwaitingApproval", "it timed out before this approval")
    if is_finished(status):
        return outcome("refused", "NotAwaitingApproval", "it ended before this approval")
    # Waiting, or not yet started (no status): the runtime keeps the event until it waits.
    return outcome("pending")


def _outcome_uri(outcome: HumanApprovalOutcome) -> str:
    return f"/api/approve/{outcome.instance_id}/{outcome.request_id}"


def _refusal(outcome: Outcome, uri: str) -> ApiError:
    assert isinstance(outcome, HumanApprovalOutcome)
    what = f"the approval of '{outcome.instance_id}'"
    # The recipe names no approvers: a request is refused for when it comes, not for who asks.
    return refusal_error(outcome, uri, what, "instanceId", ("NotAllowed", "approver"))


def _refuse_reused_key(known: HumanApprovalOutcome, event: HumanApprovalEvent) -> None:
    # The key names the approval taken: made by somebody else, it is another request (422).
    if known.outcome == "accepted":
        compared = {"approver": (known.approver or "", event.approver or "")}
        refuse_reused_key(known.request_id, compared)


def _answer(outcome: HumanApprovalOutcome, read_back: bool = False) -> func.HttpResponse:
    return outcome_response(outcome, _outcome_uri(outcome), None if read_back else _refusal)


async def _require_human_approval(
    client: df.DurableOrchestrationClient, instance_id: str
) -> DurableOrchestrationStatus:
    status = await require_instance(client, instance_id)
    if status.name != HUMAN_APPROVAL_ORCHESTRATOR:
        raise ApiError(
            404,
            "ApprovalNotFound",
            f"Instance '{instance_id}' is not a human_approval.",
            [{"field": "instanceId", "code": "not_found", "message": "not a human_approval"}],
        )
    return status


@bp.route(route="approve/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(
    path={"instanceId": "instance"},
    headers=(IDEMPOTENCY_KEY,),
    body=JsonBody(HumanApprovalEvent),
    responses=_OUTCOME,
    errors=(403, 404, 409, 422),
)
async def approve(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Approve a waiting ``human_approval``: 200 taken, 409 refused (why), 202 not taken yet."""
    instance_id = path_id(req, "instanceId")
    event = identity.bind_identities(req, read_body(req, HumanApprovalEvent))
    event.request_id = request_id_of(req)
    status = await _require_human_approval(client, instance_id)
    known = _read_outcome(status, event.request_id)
    _refuse_reused_key(known, event)
    if known.outcome != "pending":
        # A retry of the approval taken answers the same; any other is refused with the reason.
        return _answer(known)
    try:
        await client.raise_event(instance_id, HUMAN_APPROVAL_EVENT, event.to_wire())
    except Exception as error:
        # The instance may finish between the status check and the raise (the host answers
        # 410): the read below then says how it ended. Purged meanwhile (404): not found.
        if "No instance with ID" in str(error):
            raise instance_not_found(instance_id) from error
        if "is gone" not in str(error):
            raise
    request_id = event.request_id

    async def read() -> HumanApprovalOutcome:
        return _read_outcome(await _require_human_approval(client, instance_id), request_id)

    settled = await await_settled(read, WAIT_SETTING, _DEFAULT_WAIT_SECONDS)
    _refuse_reused_key(settled, event)  # another request under this key was taken meanwhile
    return _answer(settled)


@bp.route(route="approve/{instanceId}/{requestId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@endpoint(
    path={"instanceId": "instance", "requestId": "idempotency"},
    responses=_OUTCOME,
    errors=(404,),
)
async def get_human_approval_outcome(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Read what became of an approval request: accepted, refused (with why) or pending."""
    status = await _require_human_approval(client, path_id(req, "instanceId"))
    return _answer(_read_outcome(status, path_id(req, "requestId")), read_back=True)
