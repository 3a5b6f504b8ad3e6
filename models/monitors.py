"""Models of the health monitor (``health_monitor``), an eternal orchestration.

Each cycle checks one URL, records the result, alerts on a transition to unhealthy, sleeps for
the interval of the current state and restarts itself with ``continue_as_new``, carrying only
the small :class:`MonitorInput` (the last few checks included).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field, field_validator

from models.common import WireModel

__all__ = [
    "MAX_RECENT_CHECKS",
    "HealthCheckRequest",
    "HealthCheckResult",
    "HealthState",
    "MonitorCheck",
    "MonitorInput",
    "MonitorRequest",
    "MonitorResult",
    "MonitorStatus",
    "MonitorStopEvent",
    "StopReason",
]

MAX_RECENT_CHECKS = 5
MONITOR_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class MonitorRequest(WireModel):
    """Body of ``POST /api/monitors``."""

    monitor_id: str = Field(pattern=MONITOR_ID_PATTERN, description="Also the instance ID.")
    url: str = Field(max_length=2048, pattern=r"^https?://\S+$", description="Health endpoint.")
    healthy_interval_seconds: int = Field(default=300, ge=1, le=86_400)
    unhealthy_interval_seconds: int = Field(default=30, ge=1, le=86_400)
    expires_at: datetime | None = Field(default=None, description="Stop checking at this time.")
    alert_recipient: str = Field(default="oncall@example.com", min_length=1, max_length=320)

    @field_validator("expires_at")
    @classmethod
    def _needs_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expiresAt needs a UTC offset (e.g. 2024-05-01T10:00:00Z)")
        return value


class HealthState(StrEnum):
    """What the monitor believes about the endpoint."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class MonitorCheck(WireModel):
    """One health check."""

    checked_at: datetime
    healthy: bool
    status_code: int | None = None
    detail: str | None = Field(default=None, max_length=300)


class MonitorInput(MonitorRequest):
    """Input of ``health_monitor``: the request plus the state carried from cycle to cycle."""

    state: HealthState = HealthState.UNKNOWN
    cycle: int = Field(default=0, ge=0)
    unhealthy_transitions: int = Field(default=0, ge=0, description="Alerts sent so far.")
    recent_checks: list[MonitorCheck] = Field(default_factory=list, max_length=MAX_RECENT_CHECKS)


class HealthCheckRequest(WireModel):
    """Input of ``check_health_endpoint``."""

    url: str


class HealthCheckResult(WireModel):
    """Output of ``check_health_endpoint``: the status code, or why there is none (no body)."""

    status_code: int | None = None
    error: str | None = Field(default=None, max_length=300)


class MonitorStopEvent(WireModel):
    """Payload of the ``stop`` event."""

    reason: str = Field(default="stopped by request", max_length=500)


class MonitorStatus(WireModel):
    """Custom status of ``health_monitor`` (also what ``GET /api/monitors/{id}`` shows)."""

    monitor_id: str
    url: str
    state: HealthState
    cycle: int
    alerts_sent: int
    next_check_at: datetime | None = None
    recent_checks: list[MonitorCheck]


class StopReason(StrEnum):
    """Why a monitor stopped."""

    EXPIRED = "expired"
    STOPPED = "stopped"


class MonitorResult(WireModel):
    """Output of ``health_monitor`` when it stops."""

    monitor_id: str
    stopped_because: StopReason
    detail: str | None = None
    state: HealthState
    cycles: int
    alerts_sent: int
    recent_checks: list[MonitorCheck]
