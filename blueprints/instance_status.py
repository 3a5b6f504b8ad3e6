"""Looking up an orchestration instance through the durable client, and rendering its status.

Shared by the starter, the raise-event and the instance-management endpoints. The read paths
are defensive: a payload the API cannot decode is shown as stored rather than failing the call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import azure.durable_functions as df

from blueprints.http_errors import ApiError
from models.common import decode_json_text
from models.management import RuntimeStatus
from models.registry import get_public_workflow

__all__ = [
    "ACTIVE_STATUSES",
    "instance_finished",
    "instance_not_found",
    "listed_status_view",
    "raise_or_refuse",
    "refuse_foreign_instance",
    "require_instance",
    "require_instance_of",
    "require_public_instance",
    "running_conflict",
    "runtime_status",
    "start_or_refuse",
    "status_view",
]

# The statuses that block starting the same instance ID again under the host.json setting
# overridableExistingInstanceStates = NonRunningStates (protocol notes §7.1).
ACTIVE_STATUSES = frozenset(
    {
        RuntimeStatus.RUNNING,
        RuntimeStatus.PENDING,
        RuntimeStatus.SUSPENDED,
        RuntimeStatus.CONTINUED_AS_NEW,
    }
)


def running_conflict(code: str, message: str, field: str, current: str, location: str) -> ApiError:
    """Return the 409 for a start under an ID whose instance is still active.

    Parameters
    ----------
    code, message : str
        The error code (``JobAlreadyRunning``...) and what to do about it.
    field : str
        The body field that named the ID.
    current : str
        The instance's runtime status.
    location : str
        Where to look at the running instance (the ``Location`` header).
    """
    return ApiError(
        409,
        code,
        message,
        [{"field": field, "code": "instance_running", "message": f"is {current}"}],
        headers={"Location": location},
    )


async def start_or_refuse(
    client: df.DurableOrchestrationClient,
    orchestrator: str,
    instance_id: str,
    client_input: Any,
    refusal: Callable[[str], ApiError],
) -> None:
    """Start an orchestration under a caller's instance ID; a start that lost a race is a 409.

    Parameters
    ----------
    client : azure.durable_functions.DurableOrchestrationClient
        The durable client.
    orchestrator, instance_id, client_input
        What to start, as ``client.start_new`` takes them.
    refusal : Callable[[str], ApiError]
        Builds the error for an instance in the given runtime status (the caller's 409).

    Raises
    ------
    ApiError
        ``refusal("Running")`` when another start of the same ID won between the caller's
        status check and this start: the host refuses the second with "An Orchestration
        instance with the status Running already exists." (a 500 the SDK turns into an
        exception), which is the caller's conflict, not a server error.
    """
    try:
        await client.start_new(orchestrator, instance_id=instance_id, client_input=client_input)
    except Exception as error:
        if "already exists" not in str(error):
            raise
        raise refusal("Running") from error


def runtime_status(status: df.DurableOrchestrationStatus) -> RuntimeStatus | None:
    """Return an instance's runtime status, or None when the runtime reported none.

    Parameters
    ----------
    status : azure.durable_functions.DurableOrchestrationStatus
        The status returned by ``client.get_status``.

    Returns
    -------
    RuntimeStatus | None
        The status as this API names it.
    """
    value = status.runtime_status
    if value is None:
        return None
    return RuntimeStatus(getattr(value, "value", value))


async def require_instance(
    client: df.DurableOrchestrationClient, instance_id: str, show_history: bool = False
) -> df.DurableOrchestrationStatus:
    """Return an instance's status, answering 404 when there is no such instance.

    Parameters
    ----------
    client : azure.durable_functions.DurableOrchestrationClient
        The durable client.
    instance_id : str
        The instance to look up.
    show_history : bool
        Whether to include the execution history (with activity outputs).

    Returns
    -------
    azure.durable_functions.DurableOrchestrationStatus
        The instance's status.

    Raises
    ------
    ApiError
        404 ``InstanceNotFound``.
    """
    status = await client.get_status(
        instance_id,
        show_history=show_history,
        show_history_output=show_history,
        show_input=True,
    )
    # The client signals "not found" with a falsy status object (no creation time).
    if not status:
        raise instance_not_found(instance_id)
    return status


async def require_public_instance(
    client: df.DurableOrchestrationClient, instance_id: str, show_history: bool = False
) -> df.DurableOrchestrationStatus:
    """Return the status of an instance the generic instance routes may manage.

    Entities (``@name@key``) never get here: the route's ``instanceId`` passed the ID grammar
    at the input boundary (400; they are reached through their own routes). An instance of a
    workflow that is not registered ``public`` (an order, an approval, a sub-orchestration such
    as ``saga``) answers 404 like an unknown ID, so these routes can neither stop nor purge what
    another route owns, nor say that it exists.

    Raises
    ------
    ApiError
        404 ``InstanceNotFound``.
    """
    status = await require_instance(client, instance_id, show_history=show_history)
    if get_public_workflow(status.name or "") is None:
        raise instance_not_found(instance_id)
    return status


def _is(status: df.DurableOrchestrationStatus, orchestrator: str) -> bool:
    return (status.name or "").lower() == orchestrator.lower()


async def require_instance_of(
    client: df.DurableOrchestrationClient, instance_id: str, orchestrator: str
) -> df.DurableOrchestrationStatus:
    """Return the status of an instance of ``orchestrator``; any other instance is unknown here.

    A workflow's own routes (a monitor's, a batch's) answer only for their own instances, so
    ``GET /api/monitors/{id}`` cannot show another workflow's output, nor ``.../stop`` raise an
    event on it.

    Raises
    ------
    ApiError
        404 ``InstanceNotFound`` when there is no instance of ``orchestrator`` with that ID.
    """
    status = await require_instance(client, instance_id)
    if not _is(status, orchestrator):
        raise instance_not_found(instance_id)
    return status


def refuse_foreign_instance(
    status: df.DurableOrchestrationStatus | None, orchestrator: str, instance_id: str, field: str
) -> None:
    """Refuse to start ``orchestrator`` under an ID another workflow's instance holds.

    A start under the ID of a finished instance replaces its history (the host's
    ``overridableExistingInstanceStates``), so without this check a caller could erase a
    finished order or document by starting something else under its ID.

    Raises
    ------
    ApiError
        409 ``InstanceIdTaken`` naming ``field``.
    """
    if status and not _is(status, orchestrator):
        raise ApiError(
            409,
            "InstanceIdTaken",
            f"The ID '{instance_id}' belongs to an instance of another workflow; choose another.",
            [{"field": field, "code": "instance_id_taken", "message": "used by another workflow"}],
        )


def instance_not_found(instance_id: str) -> ApiError:
    """Return the 404 answered for an unknown instance ID.

    Parameters
    ----------
    instance_id : str
        The ID no instance has.

    Returns
    -------
    ApiError
        404 ``InstanceNotFound`` naming ``instanceId``.
    """
    return ApiError(
        404,
        "InstanceNotFound",
        f"No orchestration instance has the ID '{instance_id}'.",
        [{"field": "instanceId", "code": "not_found", "message": "unknown instance"}],
    )


def require_unfinished(
    instance_id: str, status: df.DurableOrchestrationStatus, refusal: str
) -> None:
    """Refuse a request to an instance that has finished, with the 410 of :func:`instance_finished`.

    Parameters
    ----------
    instance_id : str
        The instance asked.
    status : azure.durable_functions.DurableOrchestrationStatus
        Its status.
    refusal : str
        What it cannot do, completing "Instance 'x' is Completed; ...".

    Raises
    ------
    ApiError
        410 ``InstanceFinished`` when the instance is completed, failed, canceled or terminated.
    """
    current = runtime_status(status)
    if current is not None and current.is_finished:
        raise instance_finished(instance_id, current.value, refusal)


def instance_finished(instance_id: str, status: str, refusal: str) -> ApiError:
    """Return the 410 answered when an instance has finished and cannot take a request.

    Parameters
    ----------
    instance_id : str
        The finished instance.
    status : str
        Its runtime status (or "finished" when only that much is known).
    refusal : str
        What it cannot do, completing "Instance 'x' is Completed; ...".

    Returns
    -------
    ApiError
        410 ``InstanceFinished`` naming ``instanceId``.
    """
    return ApiError(
        410,
        "InstanceFinished",
        f"Instance '{instance_id}' is {status}; {refusal}.",
        [{"field": "instanceId", "code": "instance_finished", "message": f"instance is {status}"}],
    )


async def raise_or_refuse(
    client: df.DurableOrchestrationClient,
    instance_id: str,
    event_name: str,
    payload: Any,
    refusal: str,
) -> None:
    """Raise an event, answering 410 or 404 when the instance ended or vanished since it was read.

    The Python client reports the host's 410 (finished) and 404 (unknown) only through an
    exception's message; let through, they answered 500 for a request that was fine when the
    route checked the instance.

    Raises
    ------
    ApiError
        410 ``InstanceFinished`` (with ``refusal``) or 404 ``InstanceNotFound``.
    """
    try:
        await client.raise_event(instance_id, event_name, payload)
    except Exception as error:
        message = str(error)
        if "is gone" in message:
            raise instance_finished(instance_id, "finished", refusal) from error
        if "No instance with ID" in message:
            raise instance_not_found(instance_id) from error
        raise


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def status_view(
    status: df.DurableOrchestrationStatus, include_history: bool = False
) -> dict[str, Any]:
    """Render an instance's status as this API's JSON.

    Parameters
    ----------
    status : azure.durable_functions.DurableOrchestrationStatus
        The status returned by ``client.get_status``.
    include_history : bool
        Whether to add ``historyEvents``.

    Returns
    -------
    dict[str, Any]
        ``instanceId``, ``name``, ``runtimeStatus``, ``createdTime``, ``lastUpdatedTime``,
        ``input``, ``output``, ``customStatus`` (and ``historyEvents``). The input is decoded
        from the string the Python client stores it as (protocol notes §2.6).
    """
    current = runtime_status(status)
    view: dict[str, Any] = {
        "instanceId": status.instance_id,
        "name": status.name,
        "runtimeStatus": current.value if current else None,
        "createdTime": _iso(status.created_time),
        "lastUpdatedTime": _iso(status.last_updated_time),
        "input": decode_json_text(status.input_),
        "output": status.output,
        "customStatus": status.custom_status,
    }
    if include_history:
        # The host returns the history as "historyEvents", which the SDK keeps as an ad-hoc
        # attribute rather than in .history (protocol notes §6.3).
        view["historyEvents"] = getattr(status, "historyEvents", None) or status.history or []
    return view


def listed_status_view(entry: dict[str, Any]) -> dict[str, Any]:
    """Render one entry of the management API's instance list as this API's JSON.

    Parameters
    ----------
    entry : dict[str, Any]
        An instance status object as the host lists it (protocol notes §7.2).

    Returns
    -------
    dict[str, Any]
        The same fields as :func:`status_view`, with the input decoded.
    """
    return {
        "instanceId": entry.get("instanceId"),
        "name": entry.get("name"),
        "runtimeStatus": entry.get("runtimeStatus"),
        "createdTime": entry.get("createdTime"),
        "lastUpdatedTime": entry.get("lastUpdatedTime"),
        "input": decode_json_text(entry.get("input")),
        "output": entry.get("output"),
        "customStatus": entry.get("customStatus"),
    }
