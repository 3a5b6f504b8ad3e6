"""The ``approval_chain`` orchestrator: each level in turn, a decision raced against its deadline.

Per level: record the task in the approver's (and delegates') inbox, notify the approver, then
race the level's own decision event against a reminder timer and the deadline timer. The
reminder, when it fires first, is sent once and the race goes on between the decision and the
deadline; whichever ends the level, the timers still pending are cancelled so the instance
completes as soon as the chain does.

Event names are per request and level (``approval_{requestId}_level_{n}``): a decision raised
before its level starts waits, buffered by the runtime, until that level asks for it, and a
late one for a past level is never consumed.

Every decision request carries a request ID, and the custom status says what became of it: the
level's decision names the request that made it, and a request refused here (someone who is
not a decider, a malformed payload: only the raw event API lets those through) is listed with
the reason. A request for a level that another request (or the deadline) already decided is
refused by that fact alone; the route reads all three back (``chain_outcomes.py``).
"""

import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from pydantic import ValidationError

from blueprints.approvals import chain_policy as policy
from blueprints.handoff import settle_handoff, wait_again
from blueprints.log_fields import log_fields, milliseconds
from models.approvals import (
    APPROVAL_CHAIN_ORCHESTRATOR,
    ApprovalChainInput,
    ApprovalChainResult,
    ApprovalChainStatus,
    ApprovalDecision,
    ApprovalDecisionEvent,
    ApprovalLevel,
    ApprovalTaskUpdate,
    DecisionRefusal,
    decision_event_name,
)
from models.common import decode_json_text, parse_event, validation_details
from models.registry import register_workflow

logger = logging.getLogger(__name__)

bp = df.Blueprint()

# No events registered: the decision events are named per request, so the generic events
# endpoint cannot know them; decisions go through POST /api/approvals/{id}/levels/{level}.
register_workflow(APPROVAL_CHAIN_ORCHESTRATOR, ApprovalChainInput)

# Refused decision requests kept in the custom status (the status stays small).
MAX_REFUSALS = 10


@bp.orchestration_trigger(context_name="context")
def approval_chain(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    """Take a request through its approval chain and return how it ended.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        The orchestration context; its input is a :class:`~models.approvals.ApprovalChainInput`
        as JSON.

    Returns
    -------
    dict[str, Any]
        A :class:`~models.approvals.ApprovalChainResult` as JSON.
    """
    chain = ApprovalChainInput.model_validate(context.get_input(expected_type=dict))
    started = context.current_utc_datetime
    decisions: list[ApprovalDecision] = []
    refusals: list[DecisionRefusal] = []
    for level in chain.approval_chain:
        decision = yield from _run_level(context, chain, level, decisions, refusals)
        decisions.append(decision)
        if not policy.chain_continues(decision, level, len(chain.approval_chain)):
            break

    result = ApprovalChainResult(
        request_id=chain.request_id,
        final_status=policy.final_status(decisions),
        decisions=decisions,
        completed_at=context.current_utc_datetime,
    )
    context.set_custom_status(
        ApprovalChainStatus(
            stage="completed",
            request_id=chain.request_id,
            level_count=len(chain.approval_chain),
            escalations=_escalations(decisions),
            final_status=result.final_status,
            decisions=decisions,
            refusals=refusals[-MAX_REFUSALS:],
        ).to_wire()
    )
    notice = policy.result_notification(context.instance_id, chain, result)
    yield context.call_activity("send_notification", notice.to_wire())
    if not context.is_replaying:
        logger.info(
            "approval_chain ended %s",
            log_fields(
                instanceId=context.instance_id,
                workflow="approval_chain",
                event="ended",
                requestType=chain.request_type,
                outcome=result.final_status,
                durationMs=milliseconds(started, context.current_utc_datetime),
            ),
        )
    return result.to_wire()


def _escalations(decisions: list[ApprovalDecision]) -> int:
    return sum(1 for decision in decisions if decision.outcome == "escalated")


def _task_update(
    context: df.DurableOrchestrationContext,
    chain: ApprovalChainInput,
    level: ApprovalLevel,
    deadline: Any,
    decision: ApprovalDecision | None,
) -> dict[str, Any]:
    return ApprovalTaskUpdate(
        instance_id=context.instance_id,
        request_id=chain.request_id,
        level=level.level,
        approver_email=level.approver_email,
        delegates=level.delegates,
        status=decision.outcome if decision else "pending",
        request_type=chain.request_type,
        amount=chain.amount,
        description=chain.description,
        requester_email=chain.requester_email,
        deadline=deadline,
        decided_by=decision.approver_email if decision else None,
        updated_at=context.current_utc_datetime,
    ).to_wire()


def _cancel(*timers: Any) -> None:
    for timer in timers:
        if timer is not None and not timer.is_completed:
            timer.cancel()


def _request_id(payload: Any) -> str | None:
    raw = decode_json_text(payload, levels=3)
    value = raw.get("requestId") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and value else None


def _read_decision(
    context: df.DurableOrchestrationContext,
    level: ApprovalLevel,
    payload: Any,
    refusals: list[DecisionRefusal],
) -> ApprovalDecision | None:
    try:
        event = parse_event(ApprovalDecisionEvent, payload)
    except ValidationError as error:
        if not context.is_replaying:
            logger.warning(
                "approval_chain %s ignored a malformed decision: %s", context.instance_id, error
            )
        if request_id := _request_id(payload):
            reason = "; ".join(f"{d['field']}: {d['message']}" for d in validation_details(error))
            refusals.append(DecisionRefusal(request_id=request_id, level=level.level,
                                            code="InvalidDecision", reason=reason))  # fmt: skip
        return None
    decision = policy.human_decision(level, event, context.current_utc_datetime)
    if decision is None:
        if not context.is_replaying:
            logger.warning(
                "approval_chain %s ignored a decision on level %d by %s (not a decider)",
                context.instance_id,
                level.level,
                event.approver_email,
            )
        if event.request_id:
            refusals.append(
                DecisionRefusal(
                    request_id=event.request_id,
                    level=level.level,
                    code="NotAnApprover",
                    reason=f"{event.approver_email} may not decide level {level.level}",
                )
            )
    return decision


def _run_level(
    context: df.DurableOrchestrationContext,
    chain: ApprovalChainInput,
    level: ApprovalLevel,
    decisions: list[ApprovalDecision],
    refusals: list[DecisionRefusal],
) -> Generator[Any, Any, ApprovalDecision]:
    instance_id = context.instance_id
    start = context.current_utc_datetime
    deadline = start + timedelta(hours=level.timeout_hours)
    lead = level.reminder_lead_hours or chain.reminder_lead_hours
    remind_at = policy.reminder_time(start, deadline, lead)
    status = ApprovalChainStatus(
        stage="awaiting_decision",
        request_id=chain.request_id,
        level_count=len(chain.approval_chain),
        current_level=level.level,
        approver=level.approver_email,
        delegates=level.delegates,
        deadline=deadline,
        escalations=_escalations(decisions),
        decisions=decisions,
        refusals=refusals[-MAX_REFUSALS:],
    )
    context.set_custom_status(status.to_wire())
    request = policy.request_notification(instance_id, chain, level, deadline)
    yield context.task_all(
        [
            context.call_activity(
                "record_approval_task", _task_update(context, chain, level, deadline, None)
            ),
            context.call_activity("send_notification", request.to_wire()),
        ]
    )

    event_name = decision_event_name(chain.request_id, level.level)
    decision_task = context.wait_for_external_event(event_name)
    deadline_timer = context.create_timer(deadline)
    reminder_timer = context.create_timer(remind_at) if remind_at else None
    handoff = None
    while True:
        racers = [decision_task, deadline_timer]
        if reminder_timer is not None:
            racers.append(reminder_timer)
        if handoff is not None:
            racers.append(handoff)
        winner = yield context.task_any(racers)
        settle_handoff(handoff, winner)
        if winner is handoff:
            handoff = None
            continue
        handoff = None

        if reminder_timer is not None and winner is reminder_timer:
            # Only once: from here on the race is between the decision and the deadline.
            reminder_timer = None
            status.reminder_sent = True
            context.set_custom_status(status.to_wire())
            reminder = policy.reminder_notification(instance_id, chain, level, deadline)
            yield context.call_activity("send_notification", reminder.to_wire())
            continue

        if winner is decision_task:
            decision = _read_decision(context, level, decision_task.result, refusals)
            if decision is None:
                # Not a usable decision (only the raw event API lets one through): keep waiting
                # (blueprints/handoff.py says why not a plain new wait).
                status.refusals = refusals[-MAX_REFUSALS:]
                context.set_custom_status(status.to_wire())
                decision_task, handoff = wait_again(context, event_name)
                continue
            _cancel(deadline_timer, reminder_timer)
        else:
            _cancel(reminder_timer)
            decision = policy.timeout_decision(level, context.current_utc_datetime)

        yield context.call_activity(
            "record_approval_task", _task_update(context, chain, level, deadline, decision)
        )
        if not context.is_replaying:
            # The approval latency of one level, by request type, for a log search.
            logger.info(
                "approval level decided %s",
                log_fields(
                    instanceId=instance_id,
                    workflow="approval_chain",
                    event="level_decided",
                    requestType=chain.request_type,
                    level=level.level,
                    outcome=decision.outcome,
                    durationMs=milliseconds(start, decision.decided_at),
                ),
            )
        if decision.outcome == "escalated":
            notice = policy.escalation_notification(instance_id, chain, level)
            if notice is not None:
                yield context.call_activity("send_notification", notice.to_wire())
        return decision
