"""Models of the generic ``saga`` sub-orchestration: steps with compensations, and backoff.

A saga runs its steps in order; when one fails it runs the compensations of the steps that
completed, newest first. A caller that ran the forward part itself (the order flow, which waits
for approvals between steps) passes those steps as ``completed`` with an ``abortReason``, and the
saga only compensates.

A step names a *compensable action* the app declared with :func:`register_compensable_action`
(``blueprints.saga.actions``), never a function: the action says which activity or entity
operation does the step and which undoes it, so a saga's input cannot make it call anything
else (a notification, a ledger write, another entity).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from models.common import WireModel

__all__ = [
    "ActionCall",
    "BackoffPolicy",
    "CompensableAction",
    "CompensationRecord",
    "SagaInput",
    "SagaResult",
    "SagaStep",
    "compensable_actions",
    "get_compensable_action",
    "register_compensable_action",
]

StepName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


@dataclass(frozen=True)
class ActionCall:
    """One call a compensable action makes: an activity, or an operation of an entity.

    The entity's key is data (the step's ``key``); its name and operation are fixed here.
    """

    activity: str | None = None
    entity: str | None = None
    operation: str | None = None

    def __post_init__(self) -> None:
        if (self.activity is None) == (self.entity is None or self.operation is None):
            raise ValueError("an action call is an activity, or an entity with an operation")

    def describe(self, key: str | None) -> str:
        """``activity``, or ``entity/key:operation``."""
        if self.activity is not None:
            return self.activity
        return f"{self.entity}/{key}:{self.operation}"


@dataclass(frozen=True)
class CompensableAction:
    """A step the app lets sagas run, and what undoes it.

    ``forward`` None: the action is only ever handed over ``completed`` (to be undone).
    """

    name: str
    forward: ActionCall | None
    compensation: ActionCall | None

    @property
    def uses_entity(self) -> bool:
        """Whether a step of this action needs an entity key."""
        return any(call is not None and call.entity for call in (self.forward, self.compensation))


_actions: dict[str, CompensableAction] = {}


def register_compensable_action(action: CompensableAction) -> str:
    """Declare an action sagas may take; returns its name. Registering it again is a no-op.

    Raises
    ------
    ValueError
        When another action already has the name.
    """
    existing = _actions.get(action.name)
    if existing is not None and existing != action:
        raise ValueError(f"Compensable action '{action.name}' is already registered.")
    _actions[action.name] = action
    return action.name


def get_compensable_action(name: str) -> CompensableAction | None:
    """The action registered under ``name``, or None."""
    return _actions.get(name)


def compensable_actions() -> list[str]:
    """The registered action names, sorted."""
    return sorted(_actions)


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


class SagaStep(WireModel):
    """One step: a registered compensable action, the entity key it needs, and its inputs.

    A step's output counts as a failure when the call raises or returns an envelope with
    ``ok: false``. ``compensationInput`` defaults to the step's ``input``.
    """

    name: StepName
    action: str = Field(min_length=1, max_length=100, description="A registered action.")
    key: str | None = Field(
        default=None, min_length=1, max_length=200, description="The entity key, if any."
    )
    input: Any = None
    compensation_input: Any = None
    completed: bool = Field(
        default=False, description="Already done by the caller: only compensated, never run."
    )
    output: Any = Field(default=None, description="The output of a completed step, if known.")

    @field_validator("action")
    @classmethod
    def _registered(cls, name: str) -> str:
        if get_compensable_action(name) is None:
            accepted = ", ".join(compensable_actions()) or "(none)"
            raise ValueError(f"'{name}' is not a compensable action; accepted: {accepted}")
        return name

    @model_validator(mode="after")
    def _runnable(self) -> SagaStep:
        action = self.registered
        if not self.completed and action.forward is None:
            raise ValueError(f"action '{action.name}' can only be handed over as completed")
        if action.uses_entity and self.key is None:
            raise ValueError(f"action '{action.name}' needs the entity 'key'")
        return self

    @property
    def registered(self) -> CompensableAction:
        """The compensable action this step takes."""
        action = get_compensable_action(self.action)
        assert action is not None  # checked on validation
        return action

    @property
    def has_compensation(self) -> bool:
        """Whether something undoes this step."""
        return self.registered.compensation is not None


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
