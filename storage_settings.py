"""Which storage account the app and its host use, read from the settings the Functions host reads.

The Functions host finds a storage connection by name (``AzureWebJobsStorage`` unless host.json
names another): first the setting ``AzureWebJobs<name>``, then ``<name>``, without regard to case
(Microsoft.Azure.WebJobs ``IConfigurationExtensions.GetWebJobsConnectionSection``). A value is a
connection string. Both the deployed app (``blueprints/app_storage.py``) and the local host
(``devhost``) resolve their storage here, so they accept the same settings and refuse the same
mistakes, with a message that names the setting and where it was looked for.

This module is deployed with the app; it must not import ``devhost``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "DEVELOPMENT_STORAGE",
    "STORAGE_CONNECTION",
    "StorageConnection",
    "StorageSettingsError",
    "development_storage_connection_string",
    "resolve_storage",
]

STORAGE_CONNECTION = "AzureWebJobsStorage"
_WEBJOBS_PREFIX = "AzureWebJobs"

# Azurite's well-known development account (documented and public; the same in every install).
DEVSTORE_ACCOUNT_NAME = "devstoreaccount1"
DEVSTORE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_SERVICE_ENDPOINTS = {"blob": "BlobEndpoint", "queue": "QueueEndpoint", "table": "TableEndpoint"}


def development_storage_connection_string(
    host: str = "127.0.0.1", ports: tuple[int, int, int] = (10000, 10001, 10002)
) -> str:
    """The explicit connection string of Azurite's well-known account.

    The Azure SDKs do not all understand the ``UseDevelopmentStorage=true`` shorthand the
    Functions host accepts, so clients are built from this form.

    Parameters
    ----------
    host
        Address Azurite listens on.
    ports
        Blob, queue and table ports.

    Returns
    -------
    str
        ``DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=...;`` with
        path-style endpoints for the three services.
    """
    blob, queue, table = ports
    base = f"http://{host}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEVSTORE_ACCOUNT_NAME};"
        f"AccountKey={DEVSTORE_ACCOUNT_KEY};"
        f"BlobEndpoint={base}:{blob}/{DEVSTORE_ACCOUNT_NAME};"
        f"QueueEndpoint={base}:{queue}/{DEVSTORE_ACCOUNT_NAME};"
        f"TableEndpoint={base}:{table}/{DEVSTORE_ACCOUNT_NAME};"
    )


DEVELOPMENT_STORAGE = development_storage_connection_string()


class StorageSettingsError(ValueError):
    """The storage settings are missing, malformed or contradictory; the message names them."""


@dataclass(frozen=True)
class StorageConnection:
    """How to reach one storage account, as resolved from the settings.

    Attributes
    ----------
    setting
        The setting the connection was found under (``AzureWebJobsStorage``).
    connection_string
        The connection string, with the development-storage shorthand expanded.
    development
        Whether the setting asked for Azurite with ``UseDevelopmentStorage=true``.
    """

    setting: str
    connection_string: str
    development: bool = False

    @property
    def account_name(self) -> str | None:
        """The account's name, when the settings give it."""
        return _parse_connection_string(self.connection_string).get("accountname") or None

    @property
    def is_emulator(self) -> bool:
        """Whether the account is Azurite's well-known development account."""
        return self.account_name == DEVSTORE_ACCOUNT_NAME

    def describe(self) -> str:
        """One line for a banner: the setting and the account, never a key or token."""
        if self.development:
            return f"{self.setting} (UseDevelopmentStorage=true: Azurite)"
        return f"{self.setting} (connection string, account {self.account_name or '?'})"


def _lookup(settings: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Settings by lower-cased name, as the host's configuration ignores case."""
    return {name.lower(): (name, value) for name, value in settings.items()}


def _candidate_names(connection: str) -> list[str]:
    """The setting names the host tries for a connection name, in its order."""
    if connection.lower().startswith(_WEBJOBS_PREFIX.lower()):
        return [connection]
    return [_WEBJOBS_PREFIX + connection, connection]


def _parse_connection_string(value: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for segment in value.split(";"):
        if not segment.strip():
            continue
        key, separator, item = segment.partition("=")
        if not separator:
            raise ValueError(segment.strip())
        parts[key.strip().lower()] = item.strip()
    return parts


def _check_connection_string(
    setting: str, value: str, services: Iterable[str], where: str
) -> StorageConnection:
    example = "'DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...' or " + (
        "'UseDevelopmentStorage=true' for Azurite"
    )
    try:
        parts = _parse_connection_string(value)
    except ValueError:
        raise StorageSettingsError(
            f"{setting} ({where}) is not a storage connection string: it should read like "
            f"{example}, as 'name=value' pairs separated by ';'."
        ) from None
    if "usedevelopmentstorage" in parts:
        if parts["usedevelopmentstorage"].lower() != "true":
            raise StorageSettingsError(
                f"{setting} ({where}) says UseDevelopmentStorage={parts['usedevelopmentstorage']}:"
                " only 'UseDevelopmentStorage=true' (Azurite) is meaningful."
            )
        return StorageConnection(setting, DEVELOPMENT_STORAGE, development=True)
    if "endpoint" in parts and "taskhub" in parts:
        raise StorageSettingsError(
            f"{setting} ({where}) holds a Durable Task Scheduler connection string "
            "(Endpoint=...;TaskHub=...), not a storage one: put that in the setting host.json's "
            f"storageProvider.connectionStringName names, and set {setting} to {example}."
        )
    has_key = bool(parts.get("accountname")) and bool(parts.get("accountkey"))
    has_sas = bool(parts.get("sharedaccesssignature"))
    if not (has_key or has_sas):
        raise StorageSettingsError(
            f"{setting} ({where}) names no credential: it needs AccountName and AccountKey "
            f"(or SharedAccessSignature), e.g. {example}."
        )
    if not parts.get("accountname"):
        missing = [
            _SERVICE_ENDPOINTS[service]
            for service in services
            if not parts.get(_SERVICE_ENDPOINTS[service].lower())
        ]
        if missing:
            names = ", ".join(missing)
            raise StorageSettingsError(
                f"{setting} ({where}) has a SharedAccessSignature but no AccountName and no "
                f"{names}: add the endpoint of each service the app uses."
            )
    return StorageConnection(setting, value.strip())


def resolve_storage(
    settings: Mapping[str, str] | None = None,
    *,
    connection: str = STORAGE_CONNECTION,
    services: Iterable[str] = ("blob", "table"),
    where: str = "app settings",
) -> StorageConnection:
    """Find the storage connection ``connection`` in ``settings`` as the Functions host does.

    Parameters
    ----------
    settings
        The settings to read (the environment by default).
    connection
        The connection name, ``AzureWebJobsStorage`` unless host.json names another.
    services
        The services the caller will use (``blob``, ``queue``, ``table``).
    where
        Where the settings come from, for error messages.

    Returns
    -------
    StorageConnection
        The resolved connection.

    Raises
    ------
    StorageSettingsError
        When no setting names the account, or one is malformed; the message names the settings
        looked for and where.
    """
    lookup = _lookup(os.environ if settings is None else settings)
    services = tuple(services)
    names = _candidate_names(connection)
    for name in names:
        found = lookup.get(name.lower())
        if found is not None and found[1].strip():
            return _check_connection_string(found[0], found[1], services, where)
    shown = " or ".join(names)
    raise StorageSettingsError(
        f"No storage connection: {shown} is not set ({where}). Set it to a connection string "
        "('UseDevelopmentStorage=true' for Azurite)."
    )
