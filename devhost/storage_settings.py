"""Which storage account the host uses, read from the settings the Functions host reads.

The Functions host finds a storage connection by name (``AzureWebJobsStorage`` unless host.json
names another): the setting ``AzureWebJobs<name>``, then ``<name>``, without regard to case
(Microsoft.Azure.WebJobs ``IConfigurationExtensions.GetWebJobsConnectionSection``).

* A value is a **connection string** (``UseDevelopmentStorage=true`` for Azurite).
* Otherwise the **identity-based** settings ``<name>__accountName`` or the service URIs
  ``<name>__blobServiceUri``, ``__queueServiceUri``, ``__tableServiceUri`` (a URI wins over the
  account name; ``__serviceUri`` stands for the blob service) locate the account, and the
  credential is chosen as Microsoft.Extensions.Azure's ``ClientFactory.CreateCredential`` does:
  ``__credential=managedidentity`` (with ``__clientId`` for a user-assigned identity), else
  ``__tenantId`` + ``__clientId`` + ``__clientSecret`` (a service principal), else
  ``DefaultAzureCredential`` (``az login`` on a developer's machine). The Durable extension
  builds the same service URIs (``StorageServiceConnectionOptions``:
  ``https://<account>.<service>.core.windows.net``).

The local host owns these rules, as the Functions host does on Azure: it resolves the
connection once at start-up and refuses a missing, malformed or contradictory one with a
message naming the settings looked for and where (local.settings.json, the environment). A
connection string together with identity-based settings is refused: the host would silently
take the connection string (and its key) and ignore the identity. An app that reads the same
settings for its own clients (this repository's ``storage_settings.py``) runs only after a
host accepted them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "DEVELOPMENT_STORAGE",
    "IDENTITY_KEYS",
    "STORAGE_CONNECTION",
    "CredentialChoice",
    "StorageConnection",
    "StorageSettingsError",
    "development_storage_connection_string",
    "resolve_storage",
    "service_client",
    "setting_names",
]

STORAGE_CONNECTION = "AzureWebJobsStorage"
_WEBJOBS_PREFIX = "AzureWebJobs"

# Azurite's well-known development account (documented and public; the same in every install).
DEVSTORE_ACCOUNT_NAME = "devstoreaccount1"
DEVSTORE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_SERVICE_ENDPOINTS = {"blob": "BlobEndpoint", "queue": "QueueEndpoint", "table": "TableEndpoint"}
_SERVICES = ("blob", "queue", "table")

# The keys of an identity-based connection the host reads (``<name>__<key>``), in docs order.
LOCATION_KEYS = (
    "accountName",
    "blobServiceUri",
    "queueServiceUri",
    "tableServiceUri",
    "serviceUri",
)
CREDENTIAL_KEYS = ("credential", "clientId", "tenantId", "clientSecret")
IDENTITY_KEYS = LOCATION_KEYS + CREDENTIAL_KEYS
# Keys newer hosts read that this app does not: refused rather than silently ignored.
_UNREAD_KEYS = {
    "managedidentityresourceid": "managedIdentityResourceId",
    "managedidentityobjectid": "managedIdentityObjectId",
    "clientcertificate": "clientCertificate",
}
_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
_STORAGE_SCOPE = "https://storage.azure.com/.default"

ClientT = TypeVar("ClientT")


def development_storage_connection_string(
    host: str = "127.0.0.1",
    ports: tuple[int, int, int] = (10000, 10001, 10002),
    scheme: str = "http",
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
    scheme
        ``http``, or ``https`` for an Azurite started with a certificate.

    Returns
    -------
    str
        ``DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=...;`` with
        path-style endpoints for the three services.
    """
    blob, queue, table = ports
    base = f"{scheme}://{host}"
    return (
        f"DefaultEndpointsProtocol={scheme};AccountName={DEVSTORE_ACCOUNT_NAME};"
        f"AccountKey={DEVSTORE_ACCOUNT_KEY};"
        f"BlobEndpoint={base}:{blob}/{DEVSTORE_ACCOUNT_NAME};"
        f"QueueEndpoint={base}:{queue}/{DEVSTORE_ACCOUNT_NAME};"
        f"TableEndpoint={base}:{table}/{DEVSTORE_ACCOUNT_NAME};"
    )


DEVELOPMENT_STORAGE = development_storage_connection_string()


class StorageSettingsError(ValueError):
    """The storage settings are missing, malformed or contradictory; the message names them."""


@dataclass(frozen=True)
class CredentialChoice:
    """Which Microsoft Entra credential an identity-based connection uses.

    Attributes
    ----------
    kind
        ``managedidentity``, ``clientsecret`` or ``default`` (``DefaultAzureCredential``).
    client_id
        The user-assigned identity's (or the service principal's) client ID.
    tenant_id
        The service principal's tenant.
    client_secret
        The service principal's secret (never shown).
    """

    kind: str
    client_id: str | None = None
    tenant_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """The credential for a banner or a message, without the secret."""
        if self.kind == "managedidentity":
            if self.client_id:
                return f"managed identity, client ID {self.client_id}"
            return "system-assigned managed identity"
        if self.kind == "clientsecret":
            return f"service principal {self.client_id} of tenant {self.tenant_id}"
        return "DefaultAzureCredential"

    def build(self, *, asynchronous: bool = False) -> Any:
        """A new credential object (from ``azure.identity.aio`` when ``asynchronous``).

        The caller owns it: the asynchronous ones hold an HTTP session and must be closed.
        """
        if asynchronous:
            from azure.identity import aio as identity
        else:
            import azure.identity as identity  # type: ignore[no-redef]
        if self.kind == "managedidentity":
            return identity.ManagedIdentityCredential(client_id=self.client_id)
        if self.kind == "clientsecret":
            assert self.tenant_id and self.client_id and self.client_secret
            return identity.ClientSecretCredential(
                self.tenant_id, self.client_id, self.client_secret
            )
        return identity.DefaultAzureCredential()


@dataclass(frozen=True)
class StorageConnection:
    """How to reach one storage account, as resolved from the settings.

    Attributes
    ----------
    setting
        The setting the connection was found under (``AzureWebJobsStorage``).
    connection_string
        The connection string, with the development-storage shorthand expanded; None for an
        identity-based connection.
    development
        Whether the setting asked for Azurite with ``UseDevelopmentStorage=true``.
    service_uris
        For an identity-based connection: each service's URI, as ``(service, uri)`` pairs.
    credential
        For an identity-based connection: the credential to use.
    """

    setting: str
    connection_string: str | None = None
    development: bool = False
    service_uris: tuple[tuple[str, str], ...] = ()
    credential: CredentialChoice | None = None

    def service_uri(self, service: str) -> str | None:
        """The URI of ``service`` (``blob``, ``queue``, ``table``) for identity-based access."""
        return dict(self.service_uris).get(service)

    @property
    def account_name(self) -> str | None:
        """The account's name, when the settings give it or a service URI shows it."""
        if self.connection_string is not None:
            return _parse_connection_string(self.connection_string).get("accountname") or None
        if not self.service_uris:
            return None
        parts = urlsplit(self.service_uris[0][1])
        host = parts.hostname or ""
        if host == "localhost" or re.fullmatch(r"[\d.]+", host):
            return parts.path.strip("/").split("/")[0] or None  # Azurite: the path names it
        return host.split(".")[0] or None

    @property
    def is_emulator(self) -> bool:
        """Whether the account is Azurite's well-known development account."""
        return self.account_name == DEVSTORE_ACCOUNT_NAME

    def new_credential(self, *, asynchronous: bool = False) -> Any:
        """A new credential for an identity-based connection; None for a connection string."""
        return None if self.credential is None else self.credential.build(asynchronous=asynchronous)

    def describe(self) -> str:
        """One line for a banner: the setting and the account, never a key or token."""
        if self.development:
            return f"{self.setting} (UseDevelopmentStorage=true: Azurite)"
        if self.credential is not None:
            return (
                f"{self.setting} (identity-based: account {self.account_name or '?'}, "
                f"{self.credential.describe()})"
            )
        return f"{self.setting} (connection string, account {self.account_name or '?'})"


def service_client(
    connection: StorageConnection,
    service: str,
    client_class: type[ClientT],
    *,
    credential: Any = None,
    **options: Any,
) -> ClientT:
    """Build one service client (sync or async) for ``connection``: the one place that does.

    Parameters
    ----------
    connection
        The resolved connection.
    service
        ``blob``, ``queue`` or ``table``.
    client_class
        ``BlobServiceClient``, ``QueueServiceClient``, ``TableServiceClient`` or their
        ``aio`` versions.
    credential
        For an identity-based connection: the credential, built by
        :meth:`StorageConnection.new_credential` (asynchronous for ``aio`` clients) and owned
        by the caller, who may share it between clients.
    **options
        Client options (transport, retries, timeouts).

    Returns
    -------
    ClientT
        The client.
    """
    if connection.connection_string is not None:
        factory: Any = client_class
        return factory.from_connection_string(connection.connection_string, **options)
    uri = connection.service_uri(service)
    if uri is None or credential is None:
        raise StorageSettingsError(
            f"{connection.setting}: no {service} service URI or credential was resolved; "
            f"resolve the connection with services including {service!r}."
        )
    return client_class(uri, credential=credential, **options)  # type: ignore[call-arg]


def setting_names(connection: str = STORAGE_CONNECTION) -> list[str]:
    """Every setting the resolution of ``connection`` may read, for documentation checks."""
    return [connection] + [f"{connection}__{key}" for key in IDENTITY_KEYS]


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


def _identity_children(lookup: dict[str, tuple[str, str]], name: str) -> dict[str, tuple[str, str]]:
    """The ``<name>__<key>`` settings with a value, by lower-cased key."""
    prefix = f"{name.lower()}__"
    return {
        key[len(prefix) :]: (original, value.strip())
        for key, (original, value) in lookup.items()
        if key.startswith(prefix) and value.strip()
    }


def _check_uri(setting: str, value: str, where: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        reason = (
            "tokens are only sent over https"
            if parts.scheme == "http"
            else "it should read like https://<account>.table.core.windows.net"
        )
        raise StorageSettingsError(f"{setting} ({where}) is not an https:// service URI: {reason}.")
    return value.rstrip("/")


def _credential(name: str, children: dict[str, tuple[str, str]], where: str) -> CredentialChoice:
    def value(key: str) -> str | None:
        found = children.get(key.lower())
        return found[1] if found else None

    kind = (value("credential") or "").lower()
    client_id, tenant_id, secret = value("clientId"), value("tenantId"), value("clientSecret")
    if kind:
        if kind != "managedidentity":
            raise StorageSettingsError(
                f"{name}__credential ({where}) is {value('credential')!r}: the Functions host "
                "reads 'managedidentity' there (or nothing, for DefaultAzureCredential)."
            )
        if tenant_id or secret:
            extra = f"{name}__clientSecret" if secret else f"{name}__tenantId"
            raise StorageSettingsError(
                f"{extra} is set ({where}) but {name}__credential=managedidentity ignores it: "
                "remove it, or remove __credential to use that service principal."
            )
        return CredentialChoice("managedidentity", client_id=client_id)
    if tenant_id or secret:
        missing = [
            f"{name}__{key}"
            for key, found in (("tenantId", tenant_id), ("clientId", client_id))
            if not found
        ] + ([] if secret else [f"{name}__clientSecret"])
        if missing:
            raise StorageSettingsError(
                f"A service principal needs {name}__tenantId, __clientId and __clientSecret; "
                f"{', '.join(missing)} is not set ({where})."
            )
        return CredentialChoice("clientsecret", client_id, tenant_id, secret)
    if client_id:
        raise StorageSettingsError(
            f"{name}__clientId is set ({where}) without {name}__credential=managedidentity: a "
            "client ID alone does not choose an identity. Set __credential to managedidentity "
            "(a user-assigned identity), or remove __clientId."
        )
    return CredentialChoice("default")


def _identity_connection(
    name: str, children: dict[str, tuple[str, str]], services: tuple[str, ...], where: str
) -> StorageConnection:
    for key in children:
        if key in _UNREAD_KEYS:
            raise StorageSettingsError(
                f"{name}__{_UNREAD_KEYS[key]} is set ({where}) but this app does not read it: "
                f"name a user-assigned identity with {name}__clientId."
            )
        if key not in {known.lower() for known in IDENTITY_KEYS}:
            known_names = ", ".join(f"__{known}" for known in IDENTITY_KEYS)
            raise StorageSettingsError(
                f"{children[key][0]} ({where}) is not a setting the Functions host reads for a "
                f"storage connection; it reads {known_names}."
            )
    account = children.get("accountname", ("", ""))[1]
    if account and not _ACCOUNT_NAME.fullmatch(account):
        raise StorageSettingsError(
            f"{name}__accountName ({where}) is {account!r}: an account name is 3 to 24 "
            "lowercase letters and digits."
        )
    uris: list[tuple[str, str]] = []
    missing: list[str] = []
    for service in services:
        key = f"{service}ServiceUri"
        found = children.get(key.lower()) or (
            children.get("serviceuri") if service == "blob" else None
        )
        if found:
            uris.append((service, _check_uri(found[0], found[1], where)))
        elif account:
            uris.append((service, f"https://{account}.{service}.core.windows.net"))
        else:
            missing.append(f"{name}__{key}")
    if missing:
        raise StorageSettingsError(
            f"{name}__accountName is not set, and neither is {' nor '.join(missing)} ({where}): "
            f"the {'/'.join(services)} services of the account are needed. Set "
            f"{name}__accountName, or a service URI for each."
        )
    return StorageConnection(
        name, service_uris=tuple(uris), credential=_credential(name, children, where)
    )


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
        The resolved connection: a connection string, or service URIs and a credential.

    Raises
    ------
    StorageSettingsError
        When no setting names the account, or one is malformed or contradicts another; the
        message names the settings looked for and where.
    """
    lookup = _lookup(os.environ if settings is None else settings)
    services = tuple(services)
    unknown = [service for service in services if service not in _SERVICES]
    if unknown:
        raise ValueError(f"unknown storage services {unknown}")
    names = _candidate_names(connection)
    for name in names:
        found = lookup.get(name.lower())
        children = _identity_children(lookup, name)
        if found is not None and found[1].strip():
            if children:
                extra = next(iter(children.values()))[0]
                raise StorageSettingsError(
                    f"{found[0]} holds a connection string and {extra} is set too ({where}): "
                    "the Functions host would use the connection string (and its key) and "
                    "ignore the identity-based settings. Keep one of the two forms."
                )
            return _check_connection_string(found[0], found[1], services, where)
        if children:
            setting = found[0] if found is not None else name
            return _identity_connection(setting, children, services, where)
    shown = " or ".join(names)
    raise StorageSettingsError(
        f"No storage connection: {shown} (a connection string) and {names[0]}__accountName "
        f"(identity-based) are not set ({where}). Set one: 'UseDevelopmentStorage=true' for "
        "Azurite, or the account name with a managed identity on Azure."
    )
