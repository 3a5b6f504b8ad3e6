"""The ``saga`` orchestrator: run steps in order; on a failure compensate the completed ones, LIFO.

Each compensation is retried with backoff (``compensationRetry``); one that still fails is
recorded and the remaining compensations run anyway, so nothing is silently left undone: the
result's status is then ``compensation_failed`` and the caller decides who steps in.

Each step names a compensable action the app declared (``blueprints.saga.actions``), never a
function, so whoever builds a saga's input can only run and undo those actions. It is used as a
sub-orchestration (the order flow) and is not public: the generic starter does not start it.
"""

import functools
import logging
from collections.abc import Generator
from typing import Any, Literal

import azure.durable_functions as df

from blueprints.saga import actions  # noqa: F401  (declares the app's compensable actions)
from blueprints.saga.retry import Attempted, call_action, retry_with_backoff
from models.registry import register_workflow
from models.saga import CompensationRecord, SagaInput, SagaResult, SagaStep

logger = logging.getLogger(__name__)

bp = df.Blueprint()

register_workflow("saga", SagaInput)


def _describe(step: SagaStep) -> str:
    compensation = step.registered.compensation
    return compensation.describe(step.key) if compensation is not None else ""


def _forward(context: df.DurableOrchestrationContext, step: SagaStep, _attempt: int) -> Any:
    forward = step.registered.forward
    assert forward is not None  # SagaStep refuses a step to run without one
    return call_action(context, forward, step.key, step.input)


def _compensate(
    context: df.DurableOrchestrationContext, saga: SagaInput, step: SagaStep
) -> Generator[Any, Any, CompensationRecord]:
    payload = step.input if step.compensation_input is None else step.compensation_input
    compensation = step.registered.compensation
    assert compensation is not None  # only steps with a compensation are compensated
    outcome: Attempted = yield from retry_with_backoff(
        context,
        lambda _attempt: call_action(context, compensation, step.key, payload),
        saga.compensation_retry,
    )
    return CompensationRecord(
        step=step.name,
        action=_describe(step),
        status="compensated" if outcome.ok else "failed",
        attempts=outcome.attempts,
        error=outcome.error,
        output=outcome.output,
    )


@bp.orchestration_trigger(context_name="context")
def saga(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Run a saga's steps, compensating the completed ones in reverse when one fails.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        Its input is a :class:`~models.saga.SagaInput` as JSON.

    Returns
    -------
    dict[str, Any]
        A :class:`~models.saga.SagaResult` as JSON.
    """
    request = SagaInput.model_validate(context.get_input(expected_type=dict))
    done: list[SagaStep] = []
    outputs: dict[str, Any] = {}
    failed_step: str | None = None
    error = request.abort_reason
    for step in request.steps:
        if step.completed:
            done.append(step)
            outputs[step.name] = step.output
            continue
        if error is not None:
            break
        context.set_custom_status({"stage": "running", "step": step.name})
        outcome: Attempted = yield from retry_with_backoff(
            context,
            functools.partial(_forward, context, step),
            request.compensation_retry.model_copy(update={"max_attempts": 1}),
        )
        if not outcome.ok:
            failed_step, error = step.name, outcome.error
            break
        done.append(step)
        outputs[step.name] = outcome.output
    completed = [step.name for step in done]
    if error is None:
        context.set_custom_status({"stage": "completed", "step": None})
        return SagaResult(status="completed", completed=completed, outputs=outputs).to_wire()

    compensations: list[CompensationRecord] = []
    for step in reversed(done):
        if not step.has_compensation:
            continue
        context.set_custom_status({"stage": "compensating", "step": step.name})
        record: CompensationRecord = yield from _compensate(context, request, step)
        compensations.append(record)
    failures = [record.step for record in compensations if record.status == "failed"]
    if failures and not context.is_replaying:
        logger.warning("saga %s: compensations failed for %s", context.instance_id, failures)
    status: Literal["compensated", "compensation_failed"] = (
        "compensation_failed" if failures else "compensated"
    )
    context.set_custom_status({"stage": status, "step": None})
    return SagaResult(
        status=status,
        completed=completed,
        failed_step=failed_step,
        error=error,
        outputs=outputs,
        compensations=compensations,
    ).to_wire()
