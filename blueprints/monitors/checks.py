"""Reading a health check's answer, without any host."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models.monitors import HealthCheckResult, HealthState, MonitorCheck

__all__ = ["check_from_response", "next_state"]


def check_from_response(checked_at: datetime, response: Any) -> MonitorCheck:
    """Turn ``check_health_endpoint``'s result into a check: 2xx is healthy, anything else not.

    Parameters
    ----------
    checked_at : datetime
        The orchestration time of the check.
    response : Any
        A :class:`~models.monitors.HealthCheckResult` as JSON.

    Returns
    -------
    MonitorCheck
        The check; an unhealthy one says ``HTTP 503`` or why there was no answer. What the
        endpoint answered is never shown: a monitor must not become a way to read a URL.
    """
    result = HealthCheckResult.model_validate(response)
    status_code = result.status_code
    healthy = status_code is not None and 200 <= status_code < 300
    detail = None
    if not healthy:
        detail = f"HTTP {status_code}" if status_code is not None else result.error or "no answer"
    return MonitorCheck(
        checked_at=checked_at, healthy=healthy, status_code=status_code, detail=detail
    )


def next_state(check: MonitorCheck) -> HealthState:
    """Return the state a check puts the monitor in."""
    return HealthState.HEALTHY if check.healthy else HealthState.UNHEALTHY
