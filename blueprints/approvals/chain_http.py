"""HTTP routes of approval chains: start one, decide a level, view one, list an approver's inbox.

A decision is checked against the instance's custom status before its event is raised: the
status names the level that is waiting, its approver and delegates, so a decision for another
level (409) or from someone else (403) never reaches the orchestrator. The orchestrator checks
the decider again, for events raised through the raw durable API.

The status can lag behind the chain (two decisions posted at once both see the level waiting),
so the route does not stop at raising the event: it reads back the decision's outcome under its
request ID (``chain_outcomes.py``) and answers 200 when the decision counted, 409 (or 403) with
the reason when it did not, and 202 with a link to read it later when the chain has not taken
it yet. No decision ends without an outcome.
"""

import logging

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from pydantic import ValidationError

from blueprints import identity
from blueprints.approvals.chain_outcomes import decision_outcome, refuse_reused_key
from blueprints.approvals.inbox import list_inbox
from blueprints.async_api import is_finished
from blueprints.http_errors import ApiError, json_response, list_page_response
from blueprints.http_headers import IDEMPOTENCY_KEY
from blueprints.http_input import (
    IntParam,
    JsonBody,
    PathParam,
    endpoint,
    path_id,
    path_int,
    read_body,
    read_query,
)
from blueprints.instance_status import (
    ACTIVE_STATUSES,
    instance_not_found,
    refuse_foreign_instance,
    require_instance,
    runtime_status,
    status_view,
)
from blueprints.request_outcomes import (
    Outcome,
    await_settled,
    outcome_response,
    refusal_error,
    request_id_of,
)
from models.approvals import (
    APPROVAL_CHAIN_ORCHESTRATOR,
    MAX_LEVEL,
    ApprovalChainInput,
    ApprovalChainStatus,
    ApprovalDecisionEvent,
    ApprovalDecisionOutcome,
    ApprovalInboxPage,
    ApprovalInboxQuery,
    decision_event_name,
)
from models.common import decode_json_text
from models.management import RuntimeStatus
from models.responses import ApprovalChainStarted, InstanceStatusView

logger = logging.getLogger(__name__)

bp = df.Blueprint()

WAIT_SETTING = "APPROVALS_DECISION_WAIT_SECONDS"
_DEFAULT_WAIT_SECONDS = 5.0
_LEVEL: dict[str, PathParam] = {
    "instanceId": "instance",
    "level": IntParam(1, MAX_LEVEL, "The level, 1-based."),
}
# 200 with the outcome, or 202 while the chain has not taken the decision yet.
_OUTCOME = {200: ApprovalDecisionOutcome, 202: ApprovalDecisionOutcome}


def chain_instance_id(request_id: str) -> str:
    """Return the instance ID of a request's approval chain (one chain per request at a time)."""
    return f"approval-{request_id}"


@bp.route(route="approvals", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(
    body=JsonBody(ApprovalChainInput), responses={202: ApprovalChainStarted}, errors=(403, 409)
)
async def start_approval_chain(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start the approval chain of a request; its instance ID is derived from the requestId."""
    chain = read_body(req, ApprovalChainInput)
    identity.resolve_actor(req, chain.requester_email, "requesterEmail")
    instance_id = chain_instance_id(chain.request_id)
    existing = await client.get_status(instance_id)
    refuse_foreign_instance(existing, APPROVAL_CHAIN_ORCHESTRATOR, instance_id, "requestId")
    current = runtime_status(existing) if existing else None
    if current in ACTIVE_STATUSES:
        raise _already_running(req, client, instance_id)
    try:
        await client.start_new(APPROVAL_CHAIN_ORCHESTRATOR, instance_id, chain.to_wire())
    except Exception as error:
        # A concurrent start of the same request can win between the check and the start.
        if "already exists" in str(error):
            raise _already_running(req, client, instance_id) from error
        raise
    logger.info("Started approval chain %s", instance_id)
    links = client.get_client_response_links(req, instance_id)
    body = {"id": instance_id, "requestId": chain.request_id, **links}
    headers = {"Location": links["statusQueryGetUri"], "Retry-After": "10"}
    return json_response(body, status=202, headers=headers)


def _already_running(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, instance_id: str
) -> ApiError:
    status_url = client.get_client_response_links(req, instance_id)["statusQueryGetUri"]
    return ApiError(
        409,
        "ApprovalAlreadyRunning",
        f"The approval chain '{instance_id}' for this requestId is still running; "
        f"its status is at {status_url}.",
        [{"field": "requestId", "code": "instance_running", "message": "already running"}],
        headers={"Location": status_url},
    )


async def _require_chain(
    client: df.DurableOrchestrationClient, instance_id: str
) -> DurableOrchestrationStatus:
    status = await require_instance(client, instance_id)
    if status.name != APPROVAL_CHAIN_ORCHESTRATOR:
        raise ApiError(
            404,
            "ApprovalNotFound",
            f"Instance '{instance_id}' is not an approval chain.",
            [{"field": "instanceId", "code": "not_found", "message": "not an approval chain"}],
        )
    return status


def _chain_status(status: DurableOrchestrationStatus) -> ApprovalChainStatus | None:
    try:
        return ApprovalChainStatus.model_validate(decode_json_text(status.custom_status))
    except ValidationError:
        return None


def _not_current(instance_id: str, level: int, chain: ApprovalChainStatus | None) -> ApiError:
    current = chain.current_level if chain and chain.stage == "awaiting_decision" else None
    waiting = f"level {current} is waiting" if current else "no level is waiting for a decision"
    return ApiError(
        409,
        "LevelNotCurrent",
        f"Approval '{instance_id}' is not waiting for a decision on level {level}: {waiting}.",
        [{"field": "level", "code": "not_current", "message": waiting, "currentLevel": current}],
    )


def _outcome_uri(instance_id: str, level: int, request_id: str) -> str:
    return f"/api/approvals/{instance_id}/levels/{level}/decisions/{request_id}"


def _read_outcome(
    status: DurableOrchestrationStatus, level: int, request_id: str
) -> ApprovalDecisionOutcome:
    return decision_outcome(
        status.instance_id, level, request_id, _chain_status(status), is_finished(status)
    )


def _refusal(outcome: Outcome, uri: str) -> ApiError:
    assert isinstance(outcome, ApprovalDecisionOutcome)
    what = f"the decision on level {outcome.level}"
    return refusal_error(outcome, uri, what, "level", ("NotAnApprover", "approverEmail"))


def _answer(outcome: ApprovalDecisionOutcome, read_back: bool = False) -> func.HttpResponse:
    uri = _outcome_uri(outcome.instance_id, outcome.level, outcome.request_id)
    return outcome_response(outcome, uri, None if read_back else _refusal)


def _check_running(instance_id: str, status: DurableOrchestrationStatus) -> None:
    current = runtime_status(status)
    if current != RuntimeStatus.RUNNING:
        state = current.value if current else "unknown"
        raise ApiError(
            409,
            "ApprovalNotRunning",
            f"Approval '{instance_id}' is {state}; it takes no more decisions.",
            [{"field": "instanceId", "code": "not_running", "message": f"instance is {state}"}],
        )


@bp.route(route="approvals/{instanceId}/levels/{level}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(
    path=_LEVEL,
    headers=(IDEMPOTENCY_KEY,),
    body=JsonBody(ApprovalDecisionEvent),
    responses=_OUTCOME,
    errors=(403, 404, 409, 422),
)
async def decide_level(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Decide the level that is waiting: 200 applied, 409/403 refused, 202 not taken yet."""
    instance_id = path_id(req, "instanceId")
    level = path_int(req, "level")
    decision = read_body(req, ApprovalDecisionEvent)
    identity.resolve_actor(req, decision.approver_email, "approverEmail")
    request_id = request_id_of(req)
    decision.request_id = request_id

    status = await _require_chain(client, instance_id)
    known = _read_outcome(status, level, request_id)
    refuse_reused_key(known, decision)  # the key names a decision with another payload: 422
    if known.outcome != "pending":
        # A retry of a request with an outcome gets the same answer; any other request on a
        # level already decided, or on a chain that ended, is refused with the reason.
        return _answer(known)
    _check_running(instance_id, status)
    chain = _chain_status(status)
    if chain is None or chain.stage != "awaiting_decision" or chain.current_level != level:
        raise _not_current(instance_id, level, chain)
    if decision.approver_email not in [chain.approver, *chain.delegates]:
        raise ApiError(
            403,
            "NotAnApprover",
            f"{decision.approver_email} may not decide level {level}: only {chain.approver}"
            f"{' or a delegate' if chain.delegates else ''} may.",
            [
                {
                    "field": "approverEmail",
                    "code": "forbidden",
                    "message": "not this level's approver",
                }
            ],
        )

    event_name = decision_event_name(chain.request_id, level)
    try:
        await client.raise_event(instance_id, event_name, decision.to_wire())
    except Exception as error:
        # The chain may finish between the status check and the raise (the host answers 410).
        if "is gone" in str(error):
            raise ApiError(
                409,
                "ApprovalNotRunning",
                f"Approval '{instance_id}' finished; it takes no more decisions.",
                [{"field": "instanceId", "code": "not_running", "message": "instance finished"}],
            ) from error
        if "No instance with ID" in str(error):  # purged meanwhile (the host answers 404)
            raise instance_not_found(instance_id) from error
        raise
    logger.info("Raised %s on %s (request %s)", event_name, instance_id, request_id)

    async def read() -> ApprovalDecisionOutcome:
        return _read_outcome(await _require_chain(client, instance_id), level, request_id)

    settled = await await_settled(read, WAIT_SETTING, _DEFAULT_WAIT_SECONDS)
    refuse_reused_key(settled, decision)  # another request under this key was taken meanwhile
    return _answer(settled)


@bp.route(route="approvals/{instanceId}/levels/{level}/decisions/{requestId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@endpoint(path={**_LEVEL, "requestId": "idempotency"}, responses=_OUTCOME, errors=(403, 404))
async def get_decision_outcome(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Read what became of a decision request: accepted, refused (with why) or pending."""
    instance_id = path_id(req, "instanceId")
    level = path_int(req, "level")
    status = await _require_chain(client, instance_id)
    # An outcome names who decided: shown to the chain's people only, as the chain itself is.
    identity.require_one_of(req, _participants(status), f"approval '{instance_id}'", "instanceId")
    return _answer(_read_outcome(status, level, path_id(req, "requestId")), read_back=True)


@bp.route(route="approvals/{instanceId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@endpoint(path={"instanceId": "instance"}, responses={200: InstanceStatusView}, errors=(403, 404))
async def get_approval(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Show an approval chain: its runtime status, custom status, request and result."""
    instance_id = path_id(req, "instanceId")
    status = await _require_chain(client, instance_id)
    identity.require_one_of(req, _participants(status), f"approval '{instance_id}'", "instanceId")
    return json_response(status_view(status))


def _participants(status: DurableOrchestrationStatus) -> list[str]:
    try:
        chain = ApprovalChainInput.model_validate(decode_json_text(status.input_))
    except ValidationError:
        return []
    people = [chain.requester_email, chain.escalation_email]
    return [person for level in chain.approval_chain for person in level.deciders] + [
        person for person in people if person
    ]


@bp.route(route="approvals", methods=["GET"])
@endpoint(query=ApprovalInboxQuery, responses={200: ApprovalInboxPage}, errors=(403,))
async def list_approval_inbox(req: func.HttpRequest) -> func.HttpResponse:
    """List an approver's inbox: ``?approver=&status=pending&top=&continuationToken=``."""
    inbox = read_query(req, ApprovalInboxQuery)
    identity.require_self(req, inbox.approver, "approver")
    return await list_page_response(inbox, list_inbox)
