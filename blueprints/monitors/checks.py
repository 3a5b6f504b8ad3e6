"""Reading a health check's answer, without any host."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from models.monitors import HealthState, MonitorCheck

__all__ = ["check_from_response", "next_state"]


def check_from_response(checked_at: datetime, response: Any) -> MonitorCheck:
    """Turn ``call_http``'s result into a check: a 2xx answer is healthy, anything else is not.

    Parameters
    ----------
    checked_at : datetime
        The orchestration time of the check.
    response : Any
        What ``call_http`` produced: ``{"statusCode", "headers", "content"}`` as a dict (or as
        its JSON text).

    Returns
    -------
    MonitorCheck
        The check, with the start of the body as the detail of an unhealthy answer.
    """
    if isinstance(response, str):
        response = json.loads(response)
    status_code = int(response.get("statusCode") or 0)
    healthy = 200 <= status_code < 300
    detail = None
    if not healthy:
        content = str(response.get("content") or "").strip()
        detail = f"HTTP {status_code}" + (f": {content[:200]}" if content else "")
    return MonitorCheck(
        checked_at=checked_at, healthy=healthy, status_code=status_code, detail=detail
    )


def next_state(check: MonitorCheck) -> HealthState:
    """Return the state a check puts the monitor in."""
    return HealthState.HEALTHY if check.healthy else HealthState.UNHEALTHY
