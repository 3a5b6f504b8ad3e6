"""What the monitor's API speaks: its paths, its one error shape, query values, and the JSON
shapes of instance rows (values decoded for a person to read)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from devhost.store.base import InstanceRow

MONITOR_PATH = "/_devhost/monitor"
MAX_PAGE = 500
VIEW_INSTANCES = 200
MAX_ACTION_BODY = 64 * 1024
STATIC_FILES = {
    "monitor.js": "text/javascript",
    "dom.js": "text/javascript",
    "charts.js": "text/javascript",
    "eventform.js": "text/javascript",
    "monitor.css": "text/css",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
RUNNING = ("Running", "Pending", "ContinuedAsNew")


class BadRequest(Exception):
    """A query value the monitor cannot use; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def is_monitor_path(raw_path: str) -> bool:
    """True for the monitor's page and everything below it."""
    lowered = raw_path.lower()
    return lowered == MONITOR_PATH or lowered.startswith(MONITOR_PATH + "/")


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    """The one error shape (``{"error": {"code", "message", "details"}}``)."""
    details = [] if field is None else [{"field": field, "code": code, "message": message}]
    body = {"error": {"code": code, "message": message, "details": details}}
    return json_response(body, status)


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(value, ensure_ascii=False, default=str),
        content_type="application/json",
        headers=SECURITY_HEADERS,
    )


def decode_value(text: str | None) -> Any:
    """A stored JSON value for display: decoded, and decoded again when it held JSON text
    (the Python client double-encodes inputs and events). Unreadable text stays text."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def humanize(custom_status: Any) -> str | None:
    """A generic plain-words custom status: the ``stage`` of a dict ("awaiting_approval" ->
    "Awaiting approval"), or a short text as it is."""
    if isinstance(custom_status, dict):
        stage = custom_status.get("stage") or custom_status.get("state")
        if isinstance(stage, str) and stage:
            words = stage.replace("_", " ").replace("-", " ")
            return words[:1].upper() + words[1:]
        return None
    if isinstance(custom_status, str) and custom_status:
        return custom_status[:200]
    return None


def iso_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def parse_time(params: Any, name: str) -> datetime | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError) as error:
        # OverflowError: a valid time whose UTC value falls outside years 1-9999.
        raise BadRequest(name, f"'{name}' must be an ISO-8601 date and time.") from error


def parse_int(params: Any, name: str, default: int, low: int, high: int) -> int:
    raw = (params.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(name, f"'{name}' must be a whole number from {low} to {high}.")
    return int(raw)


def allowed_actions(runtime_status: str) -> list[str]:
    """What can be done to an instance in this status (the management API's rules)."""
    if runtime_status in RUNNING:
        return ["raiseEvent", "terminate", "suspend"]
    if runtime_status == "Suspended":
        return ["resume", "terminate"]
    if runtime_status == "Failed":
        return ["rewind", "restart", "purge"]
    return ["restart", "purge"]


def row_summary(row: InstanceRow) -> dict[str, Any]:
    """An instance row as the list shows it."""
    return {
        "instanceId": row.instance_id,
        "name": row.name,
        "runtimeStatus": row.runtime_status,
        "createdTime": iso_time(row.created_time),
        "lastUpdatedTime": iso_time(row.last_updated_time),
        "completedTime": iso_time(row.completed_time),
        "customStatus": decode_value(row.custom_status),
        "parentInstanceId": row.parent_instance_id,
    }
