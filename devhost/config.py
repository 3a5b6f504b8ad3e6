"""Host settings, read like ``func start`` reads them: ``host.json``, then
``local.settings.json`` (or ``local.settings.json.example`` when there is none), then the
environment, which wins, so CI and shells can override any value.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost.engine.runtime import EngineSettings

_SETTING_REFERENCE = re.compile(r"%([^%]+)%")


class ConfigError(Exception):
    """A settings file is unreadable; the message names the file and the problem."""


@dataclass
class HostConfig:
    app_dir: Path
    task_hub: str
    route_prefix: str
    storage_connection: str
    values: dict[str, str] = field(default_factory=dict)
    engine: EngineSettings = field(default_factory=EngineSettings)
    settings_file: Path | None = None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object.")
    return data


def _resolve(value: str, values: dict[str, str]) -> str:
    """Expand ``%SETTING%`` references, as the host does in host.json values."""
    return _SETTING_REFERENCE.sub(
        lambda m: values.get(m.group(1), os.environ.get(m.group(1), "")), value
    )


def default_hub_name() -> str:
    """The extension's default: the site name, alphanumerics only, else ``TestHubName``."""
    site = re.sub(r"[^A-Za-z0-9]", "", os.environ.get("WEBSITE_SITE_NAME", ""))
    if not site:
        return "TestHubName"
    if site[0].isdigit():
        site = "t" + site
    return (site[:45]).ljust(3, "H")


def load_config(app_dir: str | Path) -> HostConfig:
    """Read the app's settings and export its ``Values`` to the environment (unset keys only)."""
    app_dir = Path(app_dir).resolve()
    host_path = app_dir / "host.json"
    host = _read_json(host_path) if host_path.is_file() else {}
    settings_file = next(
        (
            p
            for p in (app_dir / "local.settings.json", app_dir / "local.settings.json.example")
            if p.is_file()
        ),
        None,
    )
    values: dict[str, str] = {}
    if settings_file is not None:
        raw_values = _read_json(settings_file).get("Values", {}) or {}
        values = {str(k): str(v) for k, v in raw_values.items()}
    for key, value in values.items():
        os.environ.setdefault(key, value)
    merged = {
        **values,
        **{k: v for k, v in os.environ.items() if k in values or k.startswith("Azure")},
    }

    extensions = host.get("extensions", {}) or {}
    durable = extensions.get("durableTask", {}) or {}
    http = extensions.get("http", {}) or {}
    hub = _resolve(str(durable.get("hubName") or ""), merged) or default_hub_name()
    provider = durable.get("storageProvider", {}) or {}
    connection_name = (
        provider.get("connectionName")
        or provider.get("connectionStringName")
        or "AzureWebJobsStorage"
    )
    connection = os.environ.get(connection_name) or values.get(connection_name, "")
    engine = EngineSettings(
        max_concurrent_activities=int(
            durable.get("maxConcurrentActivityFunctions") or 10 * (os.cpu_count() or 1)
        ),
        max_concurrent_orchestrators=int(
            durable.get("maxConcurrentOrchestratorFunctions") or 10 * (os.cpu_count() or 1)
        ),
        overridable_states=str(
            durable.get("overridableExistingInstanceStates") or "NonRunningStates"
        ),
    )
    route_prefix = http.get("routePrefix", "api")
    return HostConfig(
        app_dir=app_dir,
        task_hub=hub,
        route_prefix="api" if route_prefix is None else str(route_prefix).strip("/"),
        storage_connection=connection,
        values=values,
        engine=engine,
        settings_file=settings_file,
    )
