"""HTTP routes of the health monitor.

Routes (all under ``/api``)::

    POST monitors                     start a monitor (202 check-status response)
    GET  monitors/{monitorId}         state and last checks (202 while running, 200 once stopped)
    POST monitors/{monitorId}/stop    raise the ``stop`` event
"""

import functools
import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from pydantic import ValidationError

from blueprints.async_api import polling_response, runtime_status_name
from blueprints.http_errors import ApiError, json_response
from blueprints.http_input import JsonBody, endpoint, path_id, read_body
from blueprints.instance_status import (
    ACTIVE_STATUSES,
    raise_or_refuse,
    refuse_foreign_instance,
    require_instance_of,
    require_unfinished,
    running_conflict,
    runtime_status,
    start_or_refuse,
)
from blueprints.monitors.orchestrator import MONITOR_ORCHESTRATOR, STOP_EVENT
from blueprints.monitors.target import TargetRefused, resolve_target
from models.common import decode_json_text
from models.monitors import MonitorInput, MonitorRequest, MonitorStatus, MonitorStopEvent
from models.responses import CheckStatusResponse, MonitorStopAccepted, MonitorView

logger = logging.getLogger(__name__)

bp = df.Blueprint()


_MONITOR = {"monitorId": "monitor"}


def _running(monitor_id: str, current: str) -> ApiError:
    message = f"Monitor '{monitor_id}' is already {current}; stop it first."
    location = f"/api/monitors/{monitor_id}"
    return running_conflict("MonitorAlreadyRunning", message, "monitorId", current, location)


@bp.route(route="monitors", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(body=JsonBody(MonitorRequest), responses={202: CheckStatusResponse}, errors=(409,))
async def start_monitor(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start a monitor under its monitor ID; answers 202 with the status URLs."""
    request = read_body(req, MonitorRequest)
    try:
        await resolve_target(request.url)
    except TargetRefused as refused:
        raise ApiError(
            400,
            "TargetNotAllowed",
            f"This URL cannot be monitored: {refused}.",
            [{"field": "url", "code": "target_not_allowed", "message": str(refused)}],
        ) from refused
    existing = await client.get_status(request.monitor_id)
    refuse_foreign_instance(existing, MONITOR_ORCHESTRATOR, request.monitor_id, "monitorId")
    current = runtime_status(existing) if existing else None
    if current in ACTIVE_STATUSES:
        raise _running(request.monitor_id, current.value)
    monitor = MonitorInput.model_validate(request.to_wire())
    await start_or_refuse(
        client,
        MONITOR_ORCHESTRATOR,
        request.monitor_id,
        monitor.to_wire(),
        functools.partial(_running, request.monitor_id),
    )
    logger.info("Started monitor %s for %s", request.monitor_id, request.url)
    return client.create_check_status_response(req, request.monitor_id)


def _monitor_view(status: DurableOrchestrationStatus) -> dict[str, Any]:
    view: dict[str, Any] = {
        "monitorId": status.instance_id,
        "runtimeStatus": runtime_status_name(status),
    }
    try:
        view.update(MonitorStatus.model_validate(decode_json_text(status.custom_status)).to_wire())
    except ValidationError:
        pass  # between two cycles the new execution may not have published its status yet
    view["result"] = status.output if view["runtimeStatus"] == "Completed" else None
    return view


@bp.route(route="monitors/{monitorId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@endpoint(path=_MONITOR, responses={200: MonitorView, 202: MonitorView}, errors=(404,))
async def get_monitor(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Return a monitor's state and last checks (202 while it runs, 200 once stopped)."""
    status = await require_instance_of(client, path_id(req, "monitorId"), MONITOR_ORCHESTRATOR)
    return polling_response(req, status, _monitor_view(status))


@bp.route(route="monitors/{monitorId}/stop", methods=["POST"])
@bp.durable_client_input(client_name="client")
@endpoint(
    path=_MONITOR,
    body=JsonBody(MonitorStopEvent),
    responses={202: MonitorStopAccepted},
    errors=(404, 410),
)
async def stop_monitor(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Ask a monitor to stop; it stops during its current sleep."""
    monitor_id = path_id(req, "monitorId")
    event = read_body(req, MonitorStopEvent)
    status = await require_instance_of(client, monitor_id, MONITOR_ORCHESTRATOR)
    require_unfinished(monitor_id, status, "it has already stopped")
    # The monitor may stop between the check and the raise: 410, not a 500.
    await raise_or_refuse(client, monitor_id, STOP_EVENT, event.to_wire(), "it has already stopped")
    body = {"monitorId": monitor_id, "stopRequested": True}
    return json_response(body, status=202, headers={"Location": f"/api/monitors/{monitor_id}"})
