"""Host settings, read like ``func start`` reads them: ``host.json``, then
``local.settings.json`` (or ``local.settings.json.example`` when there is none), then the
environment, which wins, so CI and shells can override any value.

Every mistake is a :class:`ConfigError` whose message names the file or setting, the value's
path in it, and what would be accepted. ``docs/local-host.md`` lists the host.json settings the
local host honours and those it ignores.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost.engine.runtime import EngineSettings
from devhost.storage_settings import (
    STORAGE_CONNECTION,
    StorageConnection,
    StorageSettingsError,
    resolve_storage,
)

_SETTING_REFERENCE = re.compile(r"%([^%]+)%")
_TASK_HUB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,44}")
_HUB_RULE = "3 to 45 letters and digits, starting with a letter"

# storageProvider.type values the Durable extension knows (matched without regard to case), and
# the setting each provider reads its own connection from when host.json names none.
_PROVIDERS = {
    "azurestorage": ("AzureStorage", "Azure Storage", None),
    "azuremanaged": ("azureManaged", "the Durable Task Scheduler", None),
    "mssql": ("mssql", "Microsoft SQL Server", "SQLDB_Connection"),
    "netherite": ("netherite", "Netherite", "EventHubsConnection"),
}
_OVERRIDABLE_STATES = {"nonrunningstates": "NonRunningStates", "anystate": "AnyState"}


class ConfigError(Exception):
    """A setting or settings file is missing, unreadable or malformed; the message says which."""


@dataclass
class DurabilityProvider:
    """The ``storageProvider`` host.json names, and what the local host does about it.

    Attributes
    ----------
    type
        ``AzureStorage``, ``azureManaged``, ``mssql`` or ``netherite``.
    title
        The provider's name for people.
    connection_setting
        The setting the provider would read its own connection from (not for Azure Storage).
    connection_set
        Whether that setting has a value.
    """

    type: str = "AzureStorage"
    title: str = "Azure Storage"
    connection_setting: str | None = None
    connection_set: bool = False

    @property
    def is_azure_storage(self) -> bool:
        return self.type == "AzureStorage"


@dataclass
class HostConfig:
    app_dir: Path
    task_hub: str
    route_prefix: str
    storage: StorageConnection
    values: dict[str, str] = field(default_factory=dict)
    engine: EngineSettings = field(default_factory=EngineSettings)
    settings_file: Path | None = None
    provider: DurabilityProvider = field(default_factory=DurabilityProvider)
    task_hub_source: str = "host.json hubName"
    partition_count: int = 4

    def provider_notice(self) -> str | None:
        """What the banner says about a provider other than Azure Storage (None for it)."""
        provider = self.provider
        if provider.is_azure_storage:
            return None
        if provider.connection_setting is None:
            named = ""
        elif provider.connection_set:
            named = f", connection {provider.connection_setting}"
        else:
            named = f", connection {provider.connection_setting} (not set; not needed here)"
        backing = "Azurite" if self.storage.is_emulator else "the account it names"
        return (
            f"host.json names the {provider.type} durability provider ({provider.title}{named}). "
            f"The local host keeps the app's state in Azure Storage through {self.storage.setting} "
            f"instead ({backing}); the app runs unchanged."
        )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return json.dumps(value)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, not {_kind(data)}.")
    return data


def _section(parent: dict[str, Any], key: str, path: str, file: Path) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{file}: {path} must be a JSON object, not {_kind(value)}.")
    return value


def _text(parent: dict[str, Any], key: str, path: str, file: Path) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{file}: {path} must be a string, not {_kind(value)}.")
    return value


def _count(
    parent: dict[str, Any], key: str, path: str, file: Path, *, high: int | None = None
) -> int | None:
    """A whole number from host.json; the host's binder also takes one written as a string."""
    value = parent.get(key)
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    if number is None or number < 1 or (high is not None and number > high):
        bounds = f"from 1 to {high}" if high is not None else "above 0"
        raise ConfigError(f"{file}: {path} must be a whole number {bounds}, not {_kind(value)}.")
    return number


def _read_values(path: Path) -> dict[str, str]:
    """The ``Values`` of local.settings.json, as Core Tools reads them (strings)."""
    data = _read_json(path)
    if data.get("IsEncrypted") is True:
        raise ConfigError(
            f"{path} says IsEncrypted: true; the local host cannot read encrypted values. "
            "Decrypt them with 'func settings decrypt' or set IsEncrypted to false."
        )
    raw = data.get("Values")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: Values must be a JSON object, not {_kind(raw)}.")
    values: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            values[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            values[key] = str(value)
        elif value is None:
            values[key] = ""
        else:
            raise ConfigError(
                f"{path}: Values.{key} must be a string, not {_kind(value)} "
                "(Core Tools reads every value as text)."
            )
    return values


def _resolve_references(value: str, settings: dict[str, str]) -> tuple[str, list[str]]:
    """Expand ``%SETTING%`` references as the host does; also return the names not set."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if settings.get(name):
            return settings[name]
        missing.append(name)
        return match.group(0)

    return _SETTING_REFERENCE.sub(replace, value), missing


def _connection_parts(setting: str, value: str, where: str) -> dict[str, str]:
    """``Key=Value;...`` pairs of a provider's connection string, keys lower-cased."""
    parts: dict[str, str] = {}
    for index, segment in enumerate(value.split(";"), start=1):
        if not segment.strip():
            continue
        key, separator, item = segment.partition("=")
        if not separator:
            raise ConfigError(
                f"{setting} ({where}) is not a connection string: part {index} has no '=' "
                "(expected 'Endpoint=...;TaskHub=...;Authentication=...')."
            )
        parts[key.strip().lower()] = item.strip()
    return parts


def default_hub_name() -> str:
    """The extension's default: the site name, alphanumerics only, else ``TestHubName``."""
    site = re.sub(r"[^A-Za-z0-9]", "", os.environ.get("WEBSITE_SITE_NAME", ""))
    if not site:
        return "TestHubName"
    return _storage_hub_name(site)


def _storage_hub_name(name: str) -> str:
    """A name Azure Storage accepts for a hub another provider names (letters and digits)."""
    kept = re.sub(r"[^A-Za-z0-9]", "", name)
    if not kept or not kept[0].isalpha():
        kept = "t" + kept
    return kept[:45].ljust(3, "H")


def _provider(
    durable: dict[str, Any], file: Path, settings: dict[str, str]
) -> tuple[DurabilityProvider, dict[str, Any]]:
    path = "extensions.durableTask.storageProvider"
    block = _section(durable, "storageProvider", path, file)
    type_name = _text(block, "type", f"{path}.type", file) or "AzureStorage"
    known = _PROVIDERS.get(type_name.strip().lower())
    if known is None:
        raise ConfigError(
            f"{file}: {path}.type is {_kind(type_name)}; the Durable extension knows "
            "AzureStorage, azureManaged, mssql and netherite."
        )
    canonical, title, default_setting = known
    if canonical == "AzureStorage":
        return DurabilityProvider(), block
    if canonical == "netherite":
        setting = _text(block, "EventHubsConnectionName", f"{path}.EventHubsConnectionName", file)
    else:
        setting = _text(block, "connectionStringName", f"{path}.connectionStringName", file)
    setting = setting or default_setting
    connection_set = bool(setting and settings.get(setting, "").strip())
    return DurabilityProvider(canonical, title, setting, connection_set), block


def _task_hub(
    durable: dict[str, Any],
    file: Path,
    provider: DurabilityProvider,
    settings: dict[str, str],
    where: str,
    override: str | None,
) -> tuple[str, str]:
    """The hub name and where it came from, checked against Azure Storage's naming rule."""
    if override is not None:
        name, source = override, "--task-hub"
    else:
        name, source = _named_task_hub(durable, file, provider, settings, where)
    if _TASK_HUB_NAME.fullmatch(name):
        return name, source
    if provider.is_azure_storage or override is not None:
        raise ConfigError(
            f"The task hub name {name!r} (from {source}) is not valid for Azure Storage: "
            f"use {_HUB_RULE}."
        )
    kept = _storage_hub_name(name)
    return kept, f"{source}; kept as {kept} since Azure Storage allows letters and digits only"


def _named_task_hub(
    durable: dict[str, Any],
    file: Path,
    provider: DurabilityProvider,
    settings: dict[str, str],
    where: str,
) -> tuple[str, str]:
    raw = _text(durable, "hubName", "extensions.durableTask.hubName", file)
    scheduler_hub = None
    if provider.type == "azureManaged" and provider.connection_set:
        assert provider.connection_setting is not None
        parts = _connection_parts(
            provider.connection_setting, settings[provider.connection_setting], where
        )
        scheduler_hub = parts.get("taskhub") or None
    from_scheduler = f"TaskHub= of {provider.connection_setting}"
    if raw and raw.strip():
        name, missing = _resolve_references(raw.strip(), settings)
        if not missing:
            return name, "host.json hubName"
        if scheduler_hub:
            return scheduler_hub, f"{from_scheduler}; hubName {raw} is not set"
        names = ", ".join(missing)
        raise ConfigError(
            f"{file}: extensions.durableTask.hubName is {raw!r}, but the setting {names} is not "
            f"set ({where}). Set it, or write the hub name itself in host.json."
        )
    if scheduler_hub:
        return scheduler_hub, from_scheduler
    return default_hub_name(), "the extension's default (no hubName in host.json)"


def _settings_where(app_dir: Path, settings_file: Path | None) -> str:
    if settings_file is None:
        return f"looked in the environment; {app_dir} has no local.settings.json"
    return f"looked in {settings_file} Values and the environment"


def load_config(app_dir: str | Path, *, task_hub: str | None = None) -> HostConfig:
    """Read the app's settings and export its ``Values`` to the environment (unset keys only).

    Parameters
    ----------
    app_dir
        The folder holding ``host.json`` and ``local.settings.json``.
    task_hub
        A task hub name that overrides host.json (``--task-hub``).

    Returns
    -------
    HostConfig
        What the local host needs to run the app.

    Raises
    ------
    ConfigError
        When a file or setting is missing or malformed.
    """
    app_dir = Path(app_dir).resolve()
    if not app_dir.is_dir():
        raise ConfigError(f"The app folder {app_dir} does not exist.")
    host_path = app_dir / "host.json"
    host = _read_json(host_path) if host_path.is_file() else {}
    if host and host.get("version") != "2.0":
        raise ConfigError(
            f'{host_path}: version must be "2.0" (the Functions host refuses other values), '
            f"not {_kind(host.get('version'))}."
        )
    settings_file = next(
        (
            p
            for p in (app_dir / "local.settings.json", app_dir / "local.settings.json.example")
            if p.is_file()
        ),
        None,
    )
    values = _read_values(settings_file) if settings_file is not None else {}
    for key, value in values.items():
        os.environ.setdefault(key, value)
    settings = dict(os.environ)
    where = _settings_where(app_dir, settings_file)

    extensions = _section(host, "extensions", "extensions", host_path)
    durable = _section(extensions, "durableTask", "extensions.durableTask", host_path)
    http = _section(extensions, "http", "extensions.http", host_path)
    provider, provider_block = _provider(durable, host_path, settings)
    hub, hub_source = _task_hub(durable, host_path, provider, settings, where, task_hub)

    path = "extensions.durableTask.storageProvider"
    connection_name = STORAGE_CONNECTION
    if provider.is_azure_storage:
        connection_name = (
            _text(provider_block, "connectionName", f"{path}.connectionName", host_path)
            or _text(
                provider_block, "connectionStringName", f"{path}.connectionStringName", host_path
            )
            or STORAGE_CONNECTION
        )
    try:
        storage = resolve_storage(
            settings,
            connection=connection_name,
            services=("blob", "queue", "table"),
            where=where,
        )
    except StorageSettingsError as exc:
        if provider.is_azure_storage:
            raise ConfigError(str(exc)) from None
        raise ConfigError(
            f"{exc} host.json names the {provider.type} provider, but the local host keeps "
            f"the app's state in Azure Storage through {STORAGE_CONNECTION}."
        ) from None

    cores = os.cpu_count() or 1
    durable_path = "extensions.durableTask"

    def durable_count(key: str) -> int | None:
        return _count(durable, key, f"{durable_path}.{key}", host_path)

    activities = durable_count("maxConcurrentActivityFunctions")
    orchestrators = durable_count("maxConcurrentOrchestratorFunctions")
    states = _text(
        durable,
        "overridableExistingInstanceStates",
        f"{durable_path}.overridableExistingInstanceStates",
        host_path,
    )
    overridable = _OVERRIDABLE_STATES.get((states or "NonRunningStates").lower())
    if overridable is None:
        raise ConfigError(
            f"{host_path}: {durable_path}.overridableExistingInstanceStates is {_kind(states)}; "
            "use NonRunningStates or AnyState."
        )
    partitions = _count(
        provider_block, "partitionCount", f"{path}.partitionCount", host_path, high=16
    )
    engine = EngineSettings(
        max_concurrent_activities=activities or 10 * cores,
        max_concurrent_orchestrators=orchestrators or 10 * cores,
        overridable_states=overridable,
    )
    route_prefix = _text(http, "routePrefix", "extensions.http.routePrefix", host_path)
    return HostConfig(
        app_dir=app_dir,
        task_hub=hub,
        route_prefix="api" if route_prefix is None else route_prefix.strip("/"),
        storage=storage,
        values=values,
        engine=engine,
        settings_file=settings_file,
        provider=provider,
        task_hub_source=hub_source,
        partition_count=partitions if provider.is_azure_storage and partitions else 4,
    )
