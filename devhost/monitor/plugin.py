"""What an app adds to the monitor: event forms, plain-words status, its own views, facts.

The monitor knows task hubs, not apps. An app that wants more puts a module (or package)
``monitor_views`` next to its ``function_app.py`` holding an object ``plugin`` with any of
these methods (each synchronous, taking and returning plain JSON values, so the app's module
needs nothing from ``devhost``):

``describe_status(name, custom_status) -> str | None``
    The instance's custom status in plain words ("Waiting for level 2 (ana@example.com) until
    ...").
``instance_events(name, instance_id, custom_status) -> {event_name: json_schema}``
    The events the instance accepts now, each with the JSON Schema of its payload (the page
    builds the form from it).
``validate_event(name, instance_id, custom_status, event_name, payload) -> dict``
    ``{"ok": True, "payload": <normalised>}`` or ``{"ok": False, "errors": [{"field", "code",
    "message"}]}``; the monitor raises only a payload that passed.
``views() -> [{"id", "title", "description", "orchestrators"?}]`` and
``view(view_id, params, instances) -> dict``
    Per-workflow lists read from the app's own tables (or from ``instances``: the latest
    instances of the view's ``orchestrators``, as the instance list shows them):
    ``{"columns": [{"key", "label", "link"?: "instance"}], "rows": [{key: value}], "filters":
    [{"name", "label", "options"?}], "note"?}``.
``instance_panel(name, instance_id, input, output, custom_status) -> [section]``
    Workflow-specific sections of the instance page: ``{"title", "fields": [[label, value]],
    "table": {"columns", "rows"}}``.
``facts(name, runtime_status, input, output, custom_status, created_time, completed_time)``
    For the metrics: ``{"compensated": bool | None, "failed": bool (a business failure of a
    run that completed), "approvals": [{"type", "latencySeconds", "outcome"}]}``.

Each call runs in a worker thread (an app reads its tables with the synchronous SDKs) and any
error it raises is logged and treated as "nothing to add": an app without the module, or a
view that fails, never breaks the monitor.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("devhost.monitor")

PLUGIN_MODULE = "monitor_views"


class AppPlugin:
    """The app's plug-in object behind safe, asynchronous calls (or nothing at all)."""

    def __init__(self, target: Any = None, source: str | None = None) -> None:
        self._target = target
        self.source = source

    @property
    def present(self) -> bool:
        return self._target is not None

    async def _call(self, method: str, default: Any, *args: Any) -> Any:
        function = getattr(self._target, method, None)
        if function is None:
            return default
        try:
            return await asyncio.to_thread(function, *args)
        except Exception:
            log.exception("monitor plug-in %s.%s failed", self.source, method)
            return default

    async def describe_status(self, name: str, custom_status: Any) -> str | None:
        text = await self._call("describe_status", None, name, custom_status)
        return text if isinstance(text, str) else None

    async def instance_events(
        self, name: str, instance_id: str, custom_status: Any
    ) -> dict[str, dict[str, Any]]:
        events = await self._call("instance_events", {}, name, instance_id, custom_status)
        if not isinstance(events, dict):
            return {}
        return {str(key): value for key, value in events.items() if isinstance(value, dict)}

    async def validate_event(
        self, name: str, instance_id: str, custom_status: Any, event_name: str, payload: Any
    ) -> dict[str, Any]:
        failed = {
            "ok": False,
            "errors": [
                {"field": "", "code": "unchecked", "message": "the payload could not be checked"}
            ],
        }
        result = await self._call(
            "validate_event", failed, name, instance_id, custom_status, event_name, payload
        )
        return result if isinstance(result, dict) else failed

    async def views(self) -> list[dict[str, Any]]:
        views = await self._call(
            "views",
            [],
        )
        return (
            [view for view in views if isinstance(view, dict) and "id" in view]
            if isinstance(views, list)
            else []
        )

    async def view(
        self, view_id: str, params: dict[str, str], instances: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        result = await self._call("view", None, view_id, params, instances)
        return result if isinstance(result, dict) else None

    async def instance_panel(
        self, name: str, instance_id: str, input: Any, output: Any, custom_status: Any
    ) -> list[dict[str, Any]]:
        sections = await self._call(
            "instance_panel", [], name, instance_id, input, output, custom_status
        )
        return [s for s in sections if isinstance(s, dict)] if isinstance(sections, list) else []

    def facts_sync(
        self,
        name: str,
        runtime_status: str,
        input: Any,
        output: Any,
        custom_status: Any,
        created_time: str | None,
        completed_time: str | None,
    ) -> dict[str, Any]:
        """The metrics facts of one instance, called in the caller's thread (a batch of them
        runs in one worker thread)."""
        function = getattr(self._target, "facts", None)
        if function is None:
            return {}
        try:
            facts = function(
                name, runtime_status, input, output, custom_status, created_time, completed_time
            )
        except Exception:
            log.exception("monitor plug-in %s.facts failed for %s", self.source, name)
            return {}
        return facts if isinstance(facts, dict) else {}


def load_plugin(app_dir: Path | None) -> AppPlugin:
    """Import the app folder's ``monitor_views`` (a module or a package), if there is one.

    Parameters
    ----------
    app_dir : Path | None
        The folder holding ``function_app.py``; None for a task hub without an app.

    Returns
    -------
    AppPlugin
        Empty (the generic monitor) when there is no such module or it fails to import; the
        failure is logged, the monitor still starts.
    """
    if app_dir is None:
        return AppPlugin()
    folder = Path(app_dir).resolve()
    candidates = (folder / f"{PLUGIN_MODULE}.py", folder / PLUGIN_MODULE / "__init__.py")
    source = next((path for path in candidates if path.is_file()), None)
    if source is None:
        return AppPlugin()
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(PLUGIN_MODULE)
    except Exception:
        log.exception("the monitor's plug-in %s failed to import: showing the hub only", source)
        return AppPlugin()
    return AppPlugin(getattr(module, "plugin", None), str(source))
