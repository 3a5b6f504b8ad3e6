"""The chain's business logic and records, apart from the activities that call them.

Tables: ``ChainStepAttempts`` (PartitionKey instance, RowKey ``{step}:{attempt}``; an upsert, so
an activity that runs twice for the same attempt leaves one row) and ``ChainIncidents``
(PartitionKey instance, RowKey ``incident``: what failed and what was compensated).
"""

from __future__ import annotations

import json
from numbers import Number
from typing import Any

from blueprints.app_storage import safe_key, table
from models.chaining import ChainFailureInput, ChainStep, StepOperation

__all__ = ["apply_step", "attempts_of", "record_attempt", "record_incident"]

ATTEMPTS_TABLE = "ChainStepAttempts"
INCIDENTS_TABLE = "ChainIncidents"


class OperandError(ValueError):
    """The value or argument does not suit the operation (a business outcome, not retried)."""


def _number(value: Any, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, Number):
        raise OperandError(f"{what} must be a number, got {json.dumps(value)}")
    return value  # type: ignore[return-value]


def apply_step(step: ChainStep, value: Any) -> Any:
    """Return the step's output for the value it receives.

    Raises
    ------
    OperandError
        When the value or the argument does not suit the operation.
    """
    if step.operation is StepOperation.ADD:
        return _number(value, "the value") + _number(step.argument, "the argument")
    if step.operation is StepOperation.MULTIPLY:
        return _number(value, "the value") * _number(step.argument, "the argument")
    if not isinstance(value, str):
        raise OperandError(f"the value must be text, got {json.dumps(value)}")
    if step.operation is StepOperation.APPEND:
        return value + str(step.argument if step.argument is not None else "")
    return value.upper()


def record_attempt(instance_id: str, step_index: int, attempt: int, fields: dict[str, Any]) -> None:
    """Record one attempt of a step (idempotent per instance, step and attempt)."""
    table(ATTEMPTS_TABLE).upsert_entity(
        {
            "PartitionKey": safe_key(instance_id),
            "RowKey": f"{step_index:03d}:{attempt:03d}",
            "StepIndex": step_index,
            "Attempt": attempt,
            **fields,
        }
    )


def attempts_of(instance_id: str) -> list[dict[str, Any]]:
    """Return the recorded attempts of an instance, by step then attempt."""
    rows = table(ATTEMPTS_TABLE).query_entities(
        "PartitionKey eq @pk", parameters={"pk": safe_key(instance_id)}
    )
    return sorted((dict(row) for row in rows), key=lambda row: row["RowKey"])


def record_incident(request: ChainFailureInput, compensated: list[str]) -> str:
    """Record the failure and the compensations (idempotent per instance); returns its ID."""
    incident_id = f"{request.instance_id}:incident"
    table(INCIDENTS_TABLE).upsert_entity(
        {
            "PartitionKey": safe_key(request.instance_id),
            "RowKey": "incident",
            "FailedStep": request.failed_step,
            "Error": request.error[:4000],
            "Compensated": json.dumps(compensated),
        }
    )
    return incident_id
