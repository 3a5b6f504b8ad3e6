"""Orchestrator helpers: call an activity or entity operation, and retry with timer backoff.

Used with ``yield from`` inside orchestrators. The SDK's ``RetryOptions`` has a fixed interval
and retries only on exceptions, so exponential backoff, and retrying an envelope that says
``errorCode: transient``, are built from durable timers here; the waits then show in the
history as TimerCreated events with their FireAt times.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df

from models.saga import ActionCall, BackoffPolicy

__all__ = ["Attempted", "call_action", "envelope_error", "retry_with_backoff"]


@dataclass
class Attempted:
    """How a retried call ended.

    ``ok`` is False when the last attempt raised or returned ``ok: false``; ``output`` is the
    last envelope (None when it raised); ``interrupted`` when the interrupt task won a wait.
    """

    ok: bool
    output: Any
    error: str | None
    attempts: int
    interrupted: bool = False


def envelope_error(output: Any) -> str | None:
    """Return why an envelope reports failure, or None when it reports success.

    Parameters
    ----------
    output : Any
        What an activity or entity operation returned; anything but a dict with ``ok: false``
        counts as success.

    Returns
    -------
    str | None
        ``errorCode: detail`` (whichever are present), or None.
    """
    if not isinstance(output, dict) or output.get("ok", True) is not False:
        return None
    parts = [str(output[key]) for key in ("errorCode", "detail") if output.get(key)]
    return ": ".join(parts) or "failed"


def call_action(
    context: df.DurableOrchestrationContext, call: ActionCall, key: str | None, payload: Any
) -> Any:
    """Return the task making a registered action's call (activity or entity operation)."""
    if call.entity is not None:
        return context.call_entity(
            df.EntityId(call.entity, key or ""), call.operation or "", payload
        )
    return context.call_activity(call.activity or "", payload)


def retry_with_backoff(
    context: df.DurableOrchestrationContext,
    start_attempt: Callable[[int], Any],
    policy: BackoffPolicy,
    should_retry: Callable[[Any], bool] = lambda output: True,
    interrupt: Any = None,
) -> Generator[Any, Any, Attempted]:
    """Run attempts until one succeeds, one fails for good, or the attempts run out.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        The orchestration context.
    start_attempt : Callable[[int], Task]
        Builds the task of attempt ``n`` (1-based), e.g. an activity call carrying ``n``.
    policy : BackoffPolicy
        Attempts and delays.
    should_retry : Callable[[Any], bool]
        Given a failed envelope, whether to try again; an attempt that raised is always retried.
    interrupt : Task | None
        A task (e.g. a cancel event) raced against every backoff timer; when it has completed
        no further attempt starts.

    Returns
    -------
    Attempted
        The outcome (a ``yield from`` result).
    """
    attempt = 0
    while True:
        attempt += 1
        output: Any = None
        try:
            output = yield start_attempt(attempt)
            error = envelope_error(output)
        except Exception as raised:  # the activity faulted: only its message crosses over
            error = str(raised).strip().splitlines()[0] if str(raised).strip() else "failed"
            output = None
        if error is None:
            return Attempted(ok=True, output=output, error=None, attempts=attempt)
        retry = output is None or should_retry(output)
        if not retry or attempt >= policy.max_attempts:
            return Attempted(ok=False, output=output, error=error, attempts=attempt)
        if interrupt is not None and interrupt.is_completed:
            return Attempted(False, output, error, attempt, interrupted=True)
        timer = context.create_timer(context.current_utc_datetime + policy.delay(attempt))
        if interrupt is None:
            yield timer
            continue
        winner = yield context.task_any([timer, interrupt])
        if winner is not timer:
            timer.cancel()
            return Attempted(False, output, error, attempt, interrupted=True)
