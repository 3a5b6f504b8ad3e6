"""Models of the instance-management endpoints: the list query and lifecycle command bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from models.common import (
    ContinuationToken,
    QueryText,
    UtcTime,
    WireModel,
    check_text,
    comma_list,
)
from models.ids import InstanceId, OrchestratorName

__all__ = [
    "InstanceCommand",
    "InstanceCommandQuery",
    "InstanceListQuery",
    "InstanceStatusQuery",
    "RuntimeStatus",
]

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


class RuntimeStatus(StrEnum):
    """The runtime statuses of an orchestration instance, as the management API names them."""

    RUNNING = "Running"
    COMPLETED = "Completed"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    FAILED = "Failed"
    CANCELED = "Canceled"
    TERMINATED = "Terminated"
    PENDING = "Pending"
    SUSPENDED = "Suspended"

    @property
    def is_finished(self) -> bool:
        """Whether the instance has stopped for good and accepts no more events."""
        return self in _FINISHED


_FINISHED = frozenset(
    {
        RuntimeStatus.COMPLETED,
        RuntimeStatus.FAILED,
        RuntimeStatus.CANCELED,
        RuntimeStatus.TERMINATED,
    }
)
_STATUS_BY_LOWER_NAME = {status.value.lower(): status for status in RuntimeStatus}


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    # A time without an offset is read as UTC, the clock the durable runtime records in.
    return value.replace(tzinfo=UTC)


class InstanceListQuery(WireModel):
    """Query string of ``GET /api/instances``."""

    name: OrchestratorName | None = Field(
        default=None, description="Only instances of this orchestrator."
    )
    runtime_status: list[RuntimeStatus] = Field(
        default_factory=list,
        max_length=len(RuntimeStatus),
        description="Comma-separated runtime statuses to keep (each once).",
    )
    created_from: UtcTime | None = None
    created_to: UtcTime | None = None
    instance_id_prefix: InstanceId | None = Field(
        default=None, description="Only instances whose ID starts with this."
    )
    top: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    continuation_token: ContinuationToken | None = None

    @field_validator("runtime_status", mode="before")
    @classmethod
    def _split_statuses(cls, value: Any) -> Any:
        value = comma_list(value)
        if isinstance(value, list):
            # Names are matched case-insensitively (and each kept once); an unknown name is
            # left for the enum to reject with the list of accepted values.
            value = [
                _STATUS_BY_LOWER_NAME.get(part.lower(), part) if isinstance(part, str) else part
                for part in value
            ]
            return list(dict.fromkeys(value))
        return value

    @field_validator("created_from", "created_to")
    @classmethod
    def _assume_utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)

    @model_validator(mode="after")
    def _check_range(self) -> InstanceListQuery:
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValueError("createdFrom must not be later than createdTo")
        return self


class InstanceStatusQuery(WireModel):
    """Query string of ``GET /api/instances/{instanceId}``."""

    history: bool = Field(default=False, description="Include the execution history.")


MAX_REASON = 1000


def _reason_text(value: str | None) -> str | None:
    return None if value is None else check_text(value, MAX_REASON)


class InstanceCommand(WireModel):
    """Optional body of ``terminate``, ``suspend`` and ``resume``: why the command was sent."""

    reason: str | None = Field(default=None, max_length=MAX_REASON)

    _printable = field_validator("reason")(_reason_text)


class InstanceCommandQuery(WireModel):
    """Query string of ``terminate``, ``suspend`` and ``resume`` (the body's reason wins)."""

    reason: QueryText | None = None
