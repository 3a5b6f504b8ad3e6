"""The monitor's routes: its page, its static files and the JSON API the page reads.

Mounted by the local host under ``/_devhost/monitor/`` (matched before the app's own routes, so
no function route can shadow it) and served alone by ``python -m devhost monitor``. Nothing
here is part of a deployed app: ``devhost/`` is never deployed.

Every request passes :mod:`devhost.monitor.guard` first (this machine only); actions also
need the page's token and origin, and are refused when the monitor is read-only. Values are
sent as JSON and the page puts them into the document as text, never as markup.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from aiohttp import web
from azure.core.exceptions import AzureError

from devhost.monitor.actions import ACTIONS, ActionError, Actions
from devhost.monitor.guard import forgery_reason, refuse_reason
from devhost.monitor.metrics import Facts, compute_metrics
from devhost.monitor.payloads import (
    MAX_ACTION_BODY,
    MAX_PAGE,
    MONITOR_PATH,
    RUNNING,
    SECURITY_HEADERS,
    STATIC_FILES,
    VIEW_INSTANCES,
    BadRequest,
    allowed_actions,
    decode_value,
    error_response,
    humanize,
    is_monitor_path,
    iso_time,
    json_response,
    parse_int,
    parse_time,
    row_summary,
)
from devhost.monitor.plugin import AppPlugin
from devhost.monitor.reader import SORT_FIELDS, HubReader, InstanceFilters, is_entity
from devhost.monitor.timeline import build_timeline
from devhost.store.base import RUNTIME_STATUS_NAMES, InstanceQuery, InstanceRow

log = logging.getLogger("devhost.monitor")


class Monitor:
    """The monitor of one task hub.

    Parameters
    ----------
    reader : HubReader
        Reads the hub.
    plugin : AppPlugin
        What the app adds (may be empty).
    actions : Actions | None
        How to act on instances; None makes the monitor read-only.
    token : str
        The per-process anti-forgery token (``devhost.monitor.guard.new_token``).
    read_only_reason : str | None
        Shown on the page when ``actions`` is None.
    """

    def __init__(
        self,
        reader: HubReader,
        plugin: AppPlugin,
        actions: Actions | None,
        *,
        token: str,
        read_only_reason: str | None = None,
    ) -> None:
        self.reader = reader
        self.plugin = plugin
        self.actions = actions
        self.token = token
        self.read_only_reason = read_only_reason or (
            "Read-only: no actions." if actions is None else None
        )

    async def close(self) -> None:
        if self.actions is not None:
            await self.actions.close()

    def owns(self, raw_path: str) -> bool:
        """True for the paths this monitor answers (the host's front asks before its routes)."""
        return is_monitor_path(raw_path)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request below ``MONITOR_PATH``."""
        refused = refuse_reason(request)
        if refused is not None:
            return error_response(403, "Forbidden", refused)
        rest = request.rel_url.raw_path[len(MONITOR_PATH) :]
        try:
            if request.method == "GET":
                return await self._get(request, rest)
            if request.method == "POST":
                return await self._post(request, rest)
            return error_response(405, "MethodNotAllowed", "Use GET or POST.")
        except BadRequest as error:
            return error_response(400, "InvalidQuery", error.message, error.field)
        except ActionError as error:
            return error_response(error.status, error.code, error.message)
        except AzureError:
            log.exception("monitor: storage request failed for %s", request.rel_url.path)
            return error_response(
                502, "StorageUnavailable", "The task hub's storage did not answer."
            )

    # -- GET ------------------------------------------------------------------------------------

    async def _get(self, request: web.Request, rest: str) -> web.StreamResponse:
        if rest == "":
            raise web.HTTPFound(MONITOR_PATH + "/")
        if rest == "/":
            return self._page()
        if rest.startswith("/static/"):
            return self._static(rest.removeprefix("/static/"))
        routes = {
            "/api/info": self._info,
            "/api/instances": self._instances,
            "/api/instance": self._instance,
            "/api/entities": self._entities,
            "/api/view": self._view,
            "/api/metrics": self._metrics,
        }
        route = routes.get(rest)
        if route is None:
            return error_response(404, "NotFound", "No such monitor route.")
        return await route(request)

    def _page(self) -> web.Response:
        html = resources.files("devhost.monitor").joinpath("static/index.html").read_text("utf-8")
        return web.Response(
            text=html.replace("{{token}}", self.token),
            content_type="text/html",
            headers=SECURITY_HEADERS,
        )

    def _static(self, name: str) -> web.Response:
        content_type = STATIC_FILES.get(name)
        if content_type is None:
            return error_response(404, "NotFound", "No such file.")
        text = resources.files("devhost.monitor").joinpath(f"static/{name}").read_text("utf-8")
        return web.Response(text=text, content_type=content_type, headers=SECURITY_HEADERS)

    async def _info(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "taskHub": self.reader.task_hub,
                "readOnly": self.actions is None,
                "readOnlyReason": self.read_only_reason,
                "statuses": list(RUNTIME_STATUS_NAMES),
                "sortFields": list(SORT_FIELDS),
                "views": await self.plugin.views(),
                "plugin": self.plugin.present,
            }
        )

    async def _instances(self, request: web.Request) -> web.Response:
        params = request.query
        statuses = [s for s in (params.get("runtimeStatus") or "").split(",") if s.strip()]
        for status in statuses:
            if status not in RUNTIME_STATUS_NAMES:
                raise BadRequest("runtimeStatus", f"Unknown runtime status '{status}'.")
        sort = params.get("sort") or "createdTime"
        if sort not in SORT_FIELDS:
            raise BadRequest("sort", f"'sort' must be one of {', '.join(SORT_FIELDS)}.")
        order = params.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise BadRequest("order", "'order' must be asc or desc.")
        filters = InstanceFilters(
            name=params.get("name") or None,
            runtime_status=statuses,
            created_from=parse_time(params, "createdFrom"),
            created_to=parse_time(params, "createdTo"),
            instance_id_prefix=params.get("instanceIdPrefix") or None,
            custom_status_text=params.get("customStatus") or None,
        )
        offset = parse_int(params, "offset", 0, 0, 10_000_000)
        limit = parse_int(params, "limit", 50, 1, MAX_PAGE)
        page = await self.reader.list_instances(
            filters, sort=sort, descending=order == "desc", offset=offset, limit=limit
        )
        items = []
        for row in page.rows:
            summary = row_summary(row)
            summary["description"] = await self._describe(row.name, summary["customStatus"])
            items.append(summary)
        return json_response(
            {
                "instances": items,
                "total": page.total,
                "offset": offset,
                "limit": limit,
                "truncated": page.truncated,
                "scanLimit": self.reader.scan_limit,
            }
        )

    async def _describe(self, name: str, custom_status: Any) -> str | None:
        if custom_status is None:
            return None
        text = await self.plugin.describe_status(name, custom_status)
        return text or humanize(custom_status)

    def _instance_id(self, request: web.Request) -> str:
        instance_id = request.query.get("id") or ""
        if not instance_id or len(instance_id) > 1024:
            raise BadRequest("id", "'id' names the instance (1 to 1024 characters).")
        return instance_id

    async def _instance(self, request: web.Request) -> web.Response:
        instance_id = self._instance_id(request)
        row, history = await asyncio.gather(
            self.reader.instance(instance_id), self.reader.history(instance_id)
        )
        if row is None:
            return error_response(404, "InstanceNotFound", "No instance with that ID.", "id")
        detail = row_summary(row)
        status = detail["customStatus"]
        detail.update(
            executionId=row.execution_id,
            input=decode_value(row.input),
            output=decode_value(row.output),
            description=await self._describe(row.name, status),
            isEntity=is_entity(row),
        )
        timeline = build_timeline(history.events if history else [], row.parent_instance_id)
        detail["timeline"] = timeline.to_json()
        detail["parentInstanceId"] = timeline.parent_instance_id
        detail["panel"] = await self.plugin.instance_panel(
            row.name, instance_id, detail["input"], detail["output"], status
        )
        running = row.runtime_status in RUNNING
        detail["events"] = (
            await self.plugin.instance_events(row.name, instance_id, status) if running else {}
        )
        detail["actions"] = [] if self.actions is None else allowed_actions(row.runtime_status)
        return json_response(detail)

    async def _entities(self, request: web.Request) -> web.Response:
        name = (request.query.get("name") or "").strip() or None
        if name is not None and ("@" in name or len(name) > 256):
            raise BadRequest("name", "'name' is an entity name (no '@').")
        entities, truncated = await self.reader.entities(name)
        return json_response(
            {
                "entities": [
                    {
                        "name": entity.name,
                        "key": entity.key,
                        "instanceId": entity.instance_id,
                        "exists": entity.exists,
                        "state": entity.state,
                        "lastUpdatedTime": iso_time(entity.last_updated_time),
                    }
                    for entity in entities
                ],
                "truncated": truncated,
            }
        )

    async def _view(self, request: web.Request) -> web.Response:
        view_id = request.query.get("id") or ""
        view = next((v for v in await self.plugin.views() if v["id"] == view_id), None)
        if view is None:
            return error_response(404, "NoSuchView", "This app has no such view.", "id")
        params = {key: value for key, value in request.query.items() if key != "id"}
        instances: list[dict[str, Any]] = []
        for name in view.get("orchestrators") or []:
            rows, _ = await self.reader.scan(InstanceQuery(name=str(name)))
            rows.sort(key=lambda row: row.created_time, reverse=True)
            for row in rows[:VIEW_INSTANCES]:
                summary = row_summary(row)
                summary["output"] = decode_value(row.output)
                instances.append(summary)
        result = await self.plugin.view(view_id, params, instances)
        if result is None:
            return error_response(502, "ViewUnavailable", "The view could not be read now.")
        return json_response(result)

    async def _metrics(self, request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        end = parse_time(request.query, "to") or now
        start = parse_time(request.query, "from") or end - timedelta(hours=24)
        if start >= end:
            raise BadRequest("from", "'from' must be before 'to'.")
        rows, truncated = await self.reader.scan(InstanceQuery(created_from=start, created_to=end))
        rows = [row for row in rows if not is_entity(row)]
        facts = await asyncio.to_thread(self._facts, rows)
        metrics = compute_metrics(rows, facts, start, end)
        metrics["truncated"] = truncated
        return json_response(metrics)

    def _facts(self, rows: list[InstanceRow]) -> dict[str, Facts]:
        if not self.plugin.present:
            return {}
        facts = {}
        for row in rows:
            raw = self.plugin.facts_sync(
                row.name,
                row.runtime_status,
                decode_value(row.input),
                decode_value(row.output),
                decode_value(row.custom_status),
                iso_time(row.created_time),
                iso_time(row.completed_time),
            )
            approvals = raw.get("approvals")
            compensated = raw.get("compensated")
            facts[row.instance_id] = Facts(
                compensated=compensated if isinstance(compensated, bool) else None,
                failed=raw.get("failed") is True,
                approvals=[a for a in approvals if isinstance(a, dict)]
                if isinstance(approvals, list)
                else [],
            )
        return facts

    # -- POST (actions) -------------------------------------------------------------------------

    async def _post(self, request: web.Request, rest: str) -> web.StreamResponse:
        if rest not in ("/api/instance/event", "/api/instance/action"):
            return error_response(404, "NotFound", "No such monitor route.")
        forged = forgery_reason(request, self.token)
        if forged is not None:
            return error_response(403, "Forbidden", forged)
        if self.actions is None:
            return error_response(403, "ReadOnly", self.read_only_reason or "Read-only.")
        if (request.content_length or 0) > MAX_ACTION_BODY:
            return error_response(413, "TooLarge", "The request body is too large.")
        try:
            body = json.loads(await request.text() or "null")
        except ValueError:
            return error_response(400, "InvalidJson", "The body is not valid JSON.", "body")
        instance_id = self._instance_id(request)
        row = await self.reader.instance(instance_id)
        if row is None:
            return error_response(404, "InstanceNotFound", "No instance with that ID.", "id")
        if rest == "/api/instance/event":
            message = await self._raise(request, row, body)
        else:
            message = await self._act(request, row, body)
        log.info("monitor: %s", message, extra={"instance_id": instance_id, "workflow": row.name})
        return json_response({"ok": True, "message": message}, 202)

    async def _raise(self, request: web.Request, row: InstanceRow, payload: Any) -> str:
        event_name = (request.query.get("name") or "").strip()
        if not event_name or len(event_name) > 256:
            raise BadRequest("name", "'name' names the event (1 to 256 characters).")
        if "raiseEvent" not in allowed_actions(row.runtime_status):
            raise ActionError(409, "NotRunning", "Only a running instance takes events.")
        custom_status = decode_value(row.custom_status)
        events = await self.plugin.instance_events(row.name, row.instance_id, custom_status)
        if events:
            if event_name not in events:
                raise BadRequest("name", f"This instance takes no event '{event_name}' now.")
            checked = await self.plugin.validate_event(
                row.name, row.instance_id, custom_status, event_name, payload
            )
            if not checked.get("ok"):
                errors = checked.get("errors") or []
                first = errors[0] if errors and isinstance(errors[0], dict) else {}
                raise BadRequest(
                    str(first.get("field") or "payload"),
                    str(first.get("message") or "The payload does not fit the event's model."),
                )
            payload = checked.get("payload", payload)
        assert self.actions is not None
        return await self.actions.raise_event(row.instance_id, event_name, json.dumps(payload))

    async def _act(self, request: web.Request, row: InstanceRow, body: Any) -> str:
        action = request.query.get("action") or ""
        if action not in ACTIONS:
            raise BadRequest("action", f"'action' must be one of {', '.join(ACTIONS)}.")
        if action not in allowed_actions(row.runtime_status):
            raise ActionError(
                409, "NotAllowedNow", f"A {row.runtime_status} instance does not take '{action}'."
            )
        reason = body.get("reason") if isinstance(body, dict) else None
        if reason is not None and (not isinstance(reason, str) or len(reason) > 2000):
            raise BadRequest("reason", "'reason' is a text of at most 2000 characters.")
        assert self.actions is not None
        return await self.actions.act(row.instance_id, action, reason or "from the monitor")
