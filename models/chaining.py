"""Models of task chaining (``chain_with_compensation``): steps in order, each step's output
feeding the next, a retry policy with exponential backoff per step, and an error handler that
compensates the completed steps when a step's retries run out."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from models.common import WireModel

__all__ = [
    "ChainFailureInput",
    "ChainFailureResult",
    "ChainInput",
    "ChainOutcome",
    "ChainResult",
    "ChainStatus",
    "ChainStep",
    "ChainStepInput",
    "ChainStepResult",
    "RetryPolicy",
    "StepOperation",
    "StepOutcome",
]


class RetryPolicy(WireModel):
    """Retry with exponential backoff: wait ``first * coefficient**(n-1)``, capped, after try n."""

    max_attempts: int = Field(default=3, ge=1, le=10)
    first_retry_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    backoff_coefficient: float = Field(default=2.0, ge=1, le=10)
    max_retry_interval_seconds: float = Field(default=300.0, gt=0, le=86_400)

    def delay_after(self, attempt: int) -> float:
        """Return the seconds to wait after failed attempt ``attempt`` (1-based)."""
        delay = self.first_retry_interval_seconds * self.backoff_coefficient ** (attempt - 1)
        return min(delay, self.max_retry_interval_seconds)


class StepOperation(StrEnum):
    """What a step does to the value it receives."""

    ADD = "add"
    MULTIPLY = "multiply"
    APPEND = "append"
    UPPERCASE = "uppercase"


class ChainStep(WireModel):
    """One step of the chain."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    operation: StepOperation
    argument: Any = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    fail_times: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Simulate a flaky downstream: the step faults on its first N attempts.",
    )


class ChainInput(WireModel):
    """Input of ``chain_with_compensation`` (the generic starter's body)."""

    steps: list[ChainStep] = Field(min_length=1, max_length=20)
    input: Any = Field(default=None, description="The value the first step receives.")

    @model_validator(mode="after")
    def _unique_names(self) -> ChainInput:
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("step names must be unique")
        return self


class ChainStepInput(WireModel):
    """Input of ``run_chain_step``."""

    instance_id: str
    step_index: int = Field(ge=0)
    step: ChainStep
    value: Any = None
    attempt: int = Field(ge=1)
    scheduled_at: datetime = Field(description="Orchestration time of this attempt.")


class ChainStepResult(WireModel):
    """Result of ``run_chain_step``: a business outcome (faults raise and are retried)."""

    ok: bool
    value: Any = None
    error_code: str | None = None
    detail: str | None = None


class StepOutcome(WireModel):
    """How one step went, in the chain's output."""

    name: str
    ok: bool
    attempts: int
    value: Any = None
    error: str | None = None


class ChainFailureInput(WireModel):
    """Input of ``handle_chain_failure``, the error handler."""

    instance_id: str
    failed_step: str
    error: str
    completed_steps: list[StepOutcome]


class ChainFailureResult(WireModel):
    """Result of ``handle_chain_failure``: the steps compensated, newest first."""

    incident_id: str
    compensated: list[str]


class ChainStatus(WireModel):
    """Custom status of ``chain_with_compensation``."""

    current_step: str | None
    attempt: int = 0
    steps_completed: int = 0
    stage: str = "running"


class ChainOutcome(StrEnum):
    """How the chain ended."""

    COMPLETED = "completed"
    COMPENSATED = "compensated"


class ChainResult(WireModel):
    """Output of ``chain_with_compensation``."""

    outcome: ChainOutcome
    output: Any = None
    steps: list[StepOutcome]
    failed_step: str | None = None
    error: str | None = None
    compensated: list[str] = Field(default_factory=list)
    incident_id: str | None = None
