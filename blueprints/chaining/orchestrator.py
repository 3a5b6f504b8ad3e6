"""The ``chain_with_compensation`` orchestrator: steps in order, retried with backoff, then the
error handler.

The SDK's ``RetryOptions`` waits a fixed interval between attempts; exponential backoff is built
here from durable timers instead (``first * coefficient**(n-1)``, capped), so each wait is in
the history and survives a restart. Only faults (the activity raising) are retried; a business
outcome (``ok: false``) goes straight to the error handler.

Started through the generic starter: ``POST /api/orchestrators/chain_with_compensation``.
"""

import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from models.chaining import (
    ChainFailureInput,
    ChainFailureResult,
    ChainInput,
    ChainOutcome,
    ChainResult,
    ChainStatus,
    ChainStep,
    ChainStepInput,
    ChainStepResult,
    StepOutcome,
)
from models.registry import register_workflow

logger = logging.getLogger(__name__)

bp = df.Blueprint()

register_workflow("chain_with_compensation", ChainInput, public=True)


def _run_step(
    context: df.DurableOrchestrationContext, index: int, step: ChainStep, value: Any
) -> Generator[Any, Any, StepOutcome]:
    attempt = 1
    while True:
        context.set_custom_status(
            ChainStatus(current_step=step.name, attempt=attempt, steps_completed=index).to_wire()
        )
        step_input = ChainStepInput(
            instance_id=context.instance_id,
            step_index=index,
            step=step,
            value=value,
            attempt=attempt,
            scheduled_at=context.current_utc_datetime,
        )
        try:
            raw = yield context.call_activity("run_chain_step", step_input.to_wire())
        except Exception as error:
            if attempt >= step.retry.max_attempts:
                return StepOutcome(name=step.name, ok=False, attempts=attempt, error=str(error))
            delay = timedelta(seconds=step.retry.delay_after(attempt))
            yield context.create_timer(context.current_utc_datetime + delay)
            attempt += 1
            continue
        result = ChainStepResult.model_validate(raw)
        if not result.ok:
            reason = f"{result.error_code}: {result.detail}"
            return StepOutcome(name=step.name, ok=False, attempts=attempt, error=reason)
        return StepOutcome(name=step.name, ok=True, attempts=attempt, value=result.value)


@bp.orchestration_trigger(context_name="context")
def chain_with_compensation(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    """Run the steps in order; on a step that keeps failing, run the error handler.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        Its input is a :class:`~models.chaining.ChainInput` as JSON.

    Returns
    -------
    dict[str, Any]
        A :class:`~models.chaining.ChainResult` as JSON: ``completed`` with the last step's
        output, or ``compensated`` naming the failed step, its error and the undone steps.
    """
    request = ChainInput.model_validate(context.get_input(expected_type=dict))
    value = request.input
    outcomes: list[StepOutcome] = []
    for index, step in enumerate(request.steps):
        outcome = yield from _run_step(context, index, step, value)
        outcomes.append(outcome)
        if not outcome.ok:
            break
        value = outcome.value
    failed = outcomes[-1] if not outcomes[-1].ok else None
    if failed is None:
        context.set_custom_status(
            ChainStatus(current_step=None, steps_completed=len(outcomes), stage="done").to_wire()
        )
        return ChainResult(outcome=ChainOutcome.COMPLETED, output=value, steps=outcomes).to_wire()

    context.set_custom_status(
        ChainStatus(
            current_step=failed.name, steps_completed=len(outcomes) - 1, stage="compensating"
        ).to_wire()
    )
    handled = ChainFailureResult.model_validate(
        (
            yield context.call_activity(
                "handle_chain_failure",
                ChainFailureInput(
                    instance_id=context.instance_id,
                    failed_step=failed.name,
                    error=failed.error or "",
                    completed_steps=outcomes[:-1],
                ).to_wire(),
            )
        )
    )
    context.set_custom_status(
        ChainStatus(
            current_step=failed.name, steps_completed=len(outcomes) - 1, stage="compensated"
        ).to_wire()
    )
    if not context.is_replaying:
        logger.info("chain %s compensated after step %s", context.instance_id, failed.name)
    return ChainResult(
        outcome=ChainOutcome.COMPENSATED,
        steps=outcomes,
        failed_step=failed.name,
        error=failed.error,
        compensated=handled.compensated,
        incident_id=handled.incident_id,
    ).to_wire()
