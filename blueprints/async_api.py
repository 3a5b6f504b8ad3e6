"""The async HTTP API rule for friendly status routes: 202 while running, 200 when done.

The durable extension's own status URL already answers that way; the friendly routes
(``GET /api/batches/{jobId}``, ``GET /api/monitors/{monitorId}``) follow the same rule so a
client polls them the same way: while the instance runs, 202 with ``Location`` (where to poll)
and ``Retry-After`` (seconds); once it has finished, 200 with the result.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from blueprints.http_errors import json_response
from blueprints.instance_status import runtime_status
from models.management import RuntimeStatus

__all__ = ["RETRY_AFTER_SECONDS", "is_finished", "polling_response"]

RETRY_AFTER_SECONDS = 5


def is_finished(status: DurableOrchestrationStatus) -> bool:
    """Return whether the instance has stopped for good (completed, failed, terminated...)."""
    current = runtime_status(status)
    return current is not None and current.is_finished


def polling_response(
    req: func.HttpRequest, status: DurableOrchestrationStatus, body: dict[str, Any]
) -> func.HttpResponse:
    """Answer a friendly status request: 202 + ``Location`` + ``Retry-After`` while running.

    Parameters
    ----------
    req : azure.functions.HttpRequest
        The status request; its URL is where to poll again.
    status : azure.durable_functions.DurableOrchestrationStatus
        The instance's status.
    body : dict[str, Any]
        The view to answer with.

    Returns
    -------
    azure.functions.HttpResponse
        200 when the instance has finished, otherwise 202 with the polling headers.
    """
    if is_finished(status):
        return json_response(body)
    return json_response(
        body,
        status=202,
        headers={"Location": req.url, "Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def runtime_status_name(status: DurableOrchestrationStatus) -> str | None:
    """Return the runtime status as the API names it (``Running``, ``Completed``...)."""
    current = runtime_status(status)
    return current.value if isinstance(current, RuntimeStatus) else None
