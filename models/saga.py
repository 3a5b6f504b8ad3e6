"""Models of the generic ``saga`` sub-orchestration: steps with compensations, and backoff.

A saga runs its steps in order; when one fails it runs the compensations of the steps that
completed, newest first. A caller that ran the forward part itself (the order flow, which waits
for approvals between steps) passes those steps as ``completed`` with an ``abortReason``, and the
saga only compensates.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from models.common import WireModel

__all__ = [
    "BackoffPolicy",
    "CompensationRecord",
    "EntityOperation",
    "SagaInput",
    "SagaResult",
    "SagaStep",
]

FunctionName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class BackoffPolicy(WireModel):
    """Exponential backoff built from durable timers (the SDK's ``RetryOptions`` is fixed-interval).

    The delay after failed attempt ``n`` (1-based) is
    ``min(maxDelaySeconds, firstDelaySeconds * factor ** (n - 1))``.
    """

    first_delay_seconds: float = Field(default=2.0, ge=0, le=86_400)
    factor: float = Field(default=2.0, ge=1, le=10)
    max_delay_seconds: float = Field(default=60.0, ge=0, le=86_400)
    max_attempts: int = Field(default=5, ge=1, le=20, description="Attempts in all, the first too.")

    def delay(self, attempt: int) -> timedelta:
        """Return how long to wait after failed attempt ``attempt`` (1-based).

        Parameters
        ----------
        attempt : int
            The attempt that just failed.

        Returns
        -------
        datetime.timedelta
            The capped exponential delay.
        """
        seconds = self.first_delay_seconds * self.factor ** (attempt - 1)
        return timedelta(seconds=min(self.max_delay_seconds, seconds))


class EntityOperation(WireModel):
    """An operation on a durable entity, called (not signalled) so its answer is known."""

    name: str = Field(min_length=1, max_length=100, description="Entity name, e.g. 'inventory'.")
    key: str = Field(min_length=1, max_length=200)
    operation: str = Field(min_length=1, max_length=100)


class SagaStep(WireModel):
    """One step: an activity or entity operation, and what undoes it.

    A step's output counts as a failure when the call raises or returns an envelope with
    ``ok: false``. ``compensationInput`` defaults to the step's ``input``.
    """

    name: FunctionName
    activity: FunctionName | None = None
    entity: EntityOperation | None = None
    input: Any = None
    compensation: FunctionName | None = None
    compensation_entity: EntityOperation | None = None
    compensation_input: Any = None
    completed: bool = Field(
        default=False, description="Already done by the caller: only compensated, never run."
    )
    output: Any = Field(default=None, description="The output of a completed step, if known.")

    @model_validator(mode="after")
    def _one_action_each(self) -> SagaStep:
        if not self.completed and (self.activity is None) == (self.entity is None):
            raise ValueError("a step to run needs exactly one of 'activity' or 'entity'")
        if self.compensation is not None and self.compensation_entity is not None:
            raise ValueError("give at most one of 'compensation' or 'compensationEntity'")
        return self

    @property
    def has_compensation(self) -> bool:
        """Whether something undoes this step."""
        return self.compensation is not None or self.compensation_entity is not None


class SagaInput(WireModel):
    """Input of the ``saga`` orchestrator (also ``POST /api/orchestrators/saga``)."""

    steps: list[SagaStep] = Field(min_length=1, max_length=100)
    abort_reason: str | None = Field(
        default=None,
        max_length=2000,
        description="Set: run no step, compensate the completed ones (the caller failed).",
    )
    compensation_retry: BackoffPolicy = Field(
        default_factory=lambda: BackoffPolicy(
            first_delay_seconds=5, factor=2, max_delay_seconds=60, max_attempts=3
        )
    )

    @model_validator(mode="after")
    def _unique_names(self) -> SagaInput:
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("step names must be unique")
        return self


class CompensationRecord(WireModel):
    """What happened to one compensation."""

    step: str
    action: str = Field(description="The compensation activity, or 'entity/key:operation'.")
    status: Literal["compensated", "failed", "resolved"]
    attempts: int = 0
    error: str | None = None
    output: Any = None


class SagaResult(WireModel):
    """Output of ``saga``.

    ``completed`` lists the steps that succeeded in order; ``compensations`` is in the order
    they ran (reverse of ``completed``, skipping steps without a compensation).
    """

    status: Literal["completed", "compensated", "compensation_failed"]
    completed: list[str] = Field(default_factory=list)
    failed_step: str | None = None
    error: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    compensations: list[CompensationRecord] = Field(default_factory=list)
