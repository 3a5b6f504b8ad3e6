"""Activities of task chaining: run one step, and the error handler that compensates."""

import azure.durable_functions as df

from blueprints.chaining.steps import OperandError, apply_step, record_attempt, record_incident
from models.chaining import (
    ChainFailureInput,
    ChainFailureResult,
    ChainStepInput,
    ChainStepResult,
)

bp = df.Blueprint()


class TransientStepError(RuntimeError):
    """A downstream fault worth retrying (here simulated by ``failTimes``)."""


@bp.activity_trigger(input_name="payload")
def run_chain_step(payload: dict) -> dict:
    """Run one attempt of a step on the value the previous step produced.

    Parameters
    ----------
    payload : dict
        A :class:`~models.chaining.ChainStepInput` as JSON.

    Returns
    -------
    dict
        A :class:`~models.chaining.ChainStepResult` as JSON; ``ok: false`` with
        ``invalid_operand`` when the value does not suit the operation (not retried).

    Raises
    ------
    TransientStepError
        On the step's first ``failTimes`` attempts (decided by the attempt number, so a
        repeated execution of the same attempt behaves the same).
    """
    request = ChainStepInput.model_validate(payload)
    step = request.step
    transient = request.attempt <= step.fail_times
    record_attempt(
        request.instance_id,
        request.step_index,
        request.attempt,
        {
            "Step": step.name,
            "ScheduledAt": request.scheduled_at,
            "Outcome": "fault" if transient else "ran",
        },
    )
    if transient:
        raise TransientStepError(
            f"step '{step.name}' could not reach its downstream (attempt {request.attempt})"
        )
    try:
        value = apply_step(step, request.value)
    except OperandError as error:
        return ChainStepResult(ok=False, error_code="invalid_operand", detail=str(error)).to_wire()
    return ChainStepResult(ok=True, value=value).to_wire()


@bp.activity_trigger(input_name="payload")
def handle_chain_failure(payload: dict) -> dict:
    """The error handler: compensate the completed steps (newest first) and record an incident.

    Parameters
    ----------
    payload : dict
        A :class:`~models.chaining.ChainFailureInput` as JSON.

    Returns
    -------
    dict
        A :class:`~models.chaining.ChainFailureResult` as JSON.
    """
    request = ChainFailureInput.model_validate(payload)
    # Each step here is a pure transformation; undoing one means discarding its output, which
    # the incident records. A step with side effects would call its own undo here.
    compensated = [step.name for step in reversed(request.completed_steps)]
    incident_id = record_incident(request, compensated)
    return ChainFailureResult(incident_id=incident_id, compensated=compensated).to_wire()
