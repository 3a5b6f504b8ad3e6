"""The ``health_monitor`` orchestrator: one health check per execution, then ``continue_as_new``.

A cycle: stop if ``expiresAt`` has passed; GET the URL through the ``check_health_endpoint``
activity, which refuses addresses inside the network (2xx is healthy, anything else or no answer
is unhealthy); alert through the outbox on a transition to unhealthy; publish
the state in the custom status; sleep for the interval of the state, racing a ``stop`` event;
restart with the small carried state. The history therefore holds one cycle, however long the
monitor runs.

``continue_as_new`` drops events not yet received (azure-functions-durable-python #331), so the
monitor only restarts right after its timer fired: the ``stop`` event is awaited during the
whole sleep, and one raised during a check is buffered and seen by the wait that follows it.
"""

import logging
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from blueprints.monitors.checks import check_from_response, next_state
from models.common import parse_event
from models.monitors import (
    MAX_RECENT_CHECKS,
    HealthCheckRequest,
    HealthState,
    MonitorCheck,
    MonitorInput,
    MonitorResult,
    MonitorStatus,
    MonitorStopEvent,
    StopReason,
)
from models.notifications import SendNotificationInput
from models.registry import register_workflow

logger = logging.getLogger(__name__)

bp = df.Blueprint()

STOP_EVENT = "stop"
MONITOR_ORCHESTRATOR = "health_monitor"

register_workflow(MONITOR_ORCHESTRATOR, MonitorInput, events={STOP_EVENT: MonitorStopEvent})


def _status(state: MonitorInput, next_check_at: datetime | None) -> dict[str, Any]:
    return MonitorStatus(
        monitor_id=state.monitor_id,
        url=state.url,
        state=state.state,
        cycle=state.cycle,
        alerts_sent=state.unhealthy_transitions,
        next_check_at=next_check_at,
        recent_checks=state.recent_checks,
    ).to_wire()


def _result(state: MonitorInput, reason: StopReason, detail: str | None) -> dict[str, Any]:
    return MonitorResult(
        monitor_id=state.monitor_id,
        stopped_because=reason,
        detail=detail,
        state=state.state,
        cycles=state.cycle,
        alerts_sent=state.unhealthy_transitions,
        recent_checks=state.recent_checks,
    ).to_wire()


def _alert(state: MonitorInput, check: MonitorCheck, instance_id: str) -> dict[str, Any]:
    return SendNotificationInput(
        # One ID per transition: a repeated activity (or replayed cycle) alerts once.
        notification_id=f"{state.monitor_id}:unhealthy:{state.unhealthy_transitions}",
        recipient=state.alert_recipient,
        category="monitor_unhealthy",
        subject=f"{state.url} is unhealthy",
        body=f"Check at {check.checked_at.isoformat()} failed: {check.detail}",
        link=f"/api/monitors/{state.monitor_id}",
        workflow="health_monitor",
        instance_id=instance_id,
    ).to_wire()


@bp.orchestration_trigger(context_name="context")
def health_monitor(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Run one monitoring cycle and continue as new, or stop.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        Its input is a :class:`~models.monitors.MonitorInput` as JSON.

    Returns
    -------
    Any
        A :class:`~models.monitors.MonitorResult` as JSON once stopped (expired or ``stop``).
    """
    state = MonitorInput.model_validate(context.get_input(expected_type=dict))
    now = context.current_utc_datetime
    if state.expires_at is not None and now >= state.expires_at:
        context.set_custom_status(_status(state, None))
        return _result(state, StopReason.EXPIRED, f"expired at {state.expires_at.isoformat()}")
    context.set_custom_status(_status(state, now))

    try:
        response = yield context.call_activity(
            "check_health_endpoint", HealthCheckRequest(url=state.url).to_wire()
        )
        check = check_from_response(now, response)
    except Exception:
        # Only the activity's own failure lands here; its text is not shown to anyone.
        check = MonitorCheck(checked_at=now, healthy=False, detail="the check failed")
    previous = state.state
    state.state = next_state(check)
    state.cycle += 1
    state.recent_checks = [*state.recent_checks, check][-MAX_RECENT_CHECKS:]
    if state.state is HealthState.UNHEALTHY and previous is not HealthState.UNHEALTHY:
        state.unhealthy_transitions += 1
        yield context.call_activity("send_notification", _alert(state, check, context.instance_id))

    healthy = state.state is HealthState.HEALTHY
    interval = state.healthy_interval_seconds if healthy else state.unhealthy_interval_seconds
    wake_at = context.current_utc_datetime + timedelta(seconds=interval)
    if state.expires_at is not None:
        wake_at = min(wake_at, state.expires_at)
    context.set_custom_status(_status(state, wake_at))

    timer = context.create_timer(wake_at)
    stop = context.wait_for_external_event(STOP_EVENT)
    winner = yield context.task_any([timer, stop])
    if winner is stop:
        timer.cancel()
        reason = parse_event(MonitorStopEvent, stop.result).reason
        context.set_custom_status(_status(state, None))
        return _result(state, StopReason.STOPPED, reason)
    if not context.is_replaying:
        logger.info("monitor %s cycle %d: %s", state.monitor_id, state.cycle, state.state.value)
    context.continue_as_new(state.to_wire())
    return None
