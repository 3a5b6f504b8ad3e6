"""The app's storage account, read from the settings the Functions host reads for its own.

The workflows keep business data in the account of the ``AzureWebJobsStorage`` connection. The
host finds a connection by name: the setting ``AzureWebJobs<name>``, then ``<name>``, without
regard to case. Its value is a connection string (``UseDevelopmentStorage=true`` for Azurite,
which the Azure SDKs expand themselves); otherwise ``<name>__accountName`` or the service URIs
``<name>__blobServiceUri`` / ``__tableServiceUri`` (``__serviceUri`` for blobs) locate the
account, and the credential is ``__credential=managedidentity`` (``__clientId`` for a
user-assigned identity), a service principal (``__tenantId``, ``__clientId``,
``__clientSecret``), else ``DefaultAzureCredential``.

Checking those settings is the host's job, not the app's: the Functions host on Azure, and
locally the local host (``devhost.storage_settings``, which explains every mistake) or Core
Tools, read the same connection for the task hub before any function runs. So this module only
reads settings a host accepted, and names what is missing when nothing is set. A contract test
(``tests/test_storage_settings.py``) checks that it and the local host reach the same endpoints
with the same credential for every form of the settings.

This module is deployed with the app; it must not import ``devhost`` (never deployed).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "STORAGE_CONNECTION",
    "CredentialChoice",
    "StorageConnection",
    "StorageSettingsError",
    "resolve_storage",
    "service_client",
    "setting_names",
]

STORAGE_CONNECTION = "AzureWebJobsStorage"
_WEBJOBS_PREFIX = "AzureWebJobs"
# The keys of an identity-based connection the host reads (``<name>__<key>``), in docs order.
IDENTITY_KEYS = (
    "accountName",
    "blobServiceUri",
    "queueServiceUri",
    "tableServiceUri",
    "serviceUri",
    "credential",
    "clientId",
    "tenantId",
    "clientSecret",
)

ClientT = TypeVar("ClientT")


class StorageSettingsError(ValueError):
    """No setting names the app's storage account; the message names the settings looked for."""


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

    def build(self) -> Any:
        """A new (synchronous) credential object; the caller owns it."""
        import azure.identity as identity

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
    """How to reach the app's storage account.

    Attributes
    ----------
    setting
        The setting the connection was found under (``AzureWebJobsStorage``).
    connection_string
        The connection string as set; None for an identity-based connection.
    service_uris
        For an identity-based connection: each service's URI, as ``(service, uri)`` pairs.
    credential
        For an identity-based connection: the credential to use.
    """

    setting: str
    connection_string: str | None = None
    service_uris: tuple[tuple[str, str], ...] = ()
    credential: CredentialChoice | None = None

    def service_uri(self, service: str) -> str | None:
        """The URI of ``service`` (``blob``, ``table``) for identity-based access."""
        return dict(self.service_uris).get(service)

    def new_credential(self) -> Any:
        """A new credential for an identity-based connection; None for a connection string."""
        return None if self.credential is None else self.credential.build()


def service_client(
    connection: StorageConnection,
    service: str,
    client_class: type[ClientT],
    *,
    credential: Any = None,
    **options: Any,
) -> ClientT:
    """Build one service client for ``connection``.

    Parameters
    ----------
    connection
        The resolved connection.
    service
        ``blob`` or ``table``.
    client_class
        ``BlobServiceClient`` or ``TableServiceClient``.
    credential
        For an identity-based connection: the credential from
        :meth:`StorageConnection.new_credential`, owned by the caller.
    **options
        Client options.

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
            f"{connection.setting}: no {service} service URI or credential was resolved."
        )
    return client_class(uri, credential=credential, **options)  # type: ignore[call-arg]


def setting_names(connection: str = STORAGE_CONNECTION) -> list[str]:
    """Every setting the resolution of ``connection`` may read, for documentation checks."""
    return [connection] + [f"{connection}__{key}" for key in IDENTITY_KEYS]


def resolve_storage(
    settings: Mapping[str, str] | None = None,
    *,
    connection: str = STORAGE_CONNECTION,
    services: Iterable[str] = ("blob", "table"),
) -> StorageConnection:
    """Find the storage connection ``connection`` in ``settings`` as the Functions host does.

    Parameters
    ----------
    settings
        The settings to read (the environment by default).
    connection
        The connection name.
    services
        The services the app will use.

    Returns
    -------
    StorageConnection
        A connection string, or service URIs and a credential.

    Raises
    ------
    StorageSettingsError
        When no setting names the account (or one service of it).
    """
    values = {
        name.lower(): value.strip()
        for name, value in (os.environ if settings is None else settings).items()
    }
    if connection.lower().startswith(_WEBJOBS_PREFIX.lower()):
        names = [connection]
    else:
        names = [_WEBJOBS_PREFIX + connection, connection]
    for name in names:
        if values.get(name.lower()):
            return StorageConnection(name, connection_string=values[name.lower()])
        prefix = f"{name.lower()}__"
        children = {
            key[len(prefix) :]: value
            for key, value in values.items()
            if key.startswith(prefix) and value
        }
        if children:
            return _identity_connection(name, children, tuple(services))
    raise StorageSettingsError(
        f"No storage connection: {' or '.join(names)} (a connection string) and "
        f"{names[0]}__accountName (identity-based) are not set. Set one: "
        "'UseDevelopmentStorage=true' for Azurite, or the account name with a managed identity "
        "on Azure."
    )


def _identity_connection(
    name: str, children: dict[str, str], services: tuple[str, ...]
) -> StorageConnection:
    account = children.get("accountname")
    uris = []
    for service in services:
        uri = children.get(f"{service}serviceuri") or (
            children.get("serviceuri") if service == "blob" else None
        )
        if uri is None and account:
            uri = f"https://{account}.{service}.core.windows.net"
        if uri is None:
            raise StorageSettingsError(
                f"Neither {name}__accountName nor {name}__{service}ServiceUri is set."
            )
        uris.append((service, uri.rstrip("/")))
    client_id = children.get("clientid")
    if children.get("credential", "").lower() == "managedidentity":
        credential = CredentialChoice("managedidentity", client_id=client_id)
    elif children.get("clientsecret"):
        credential = CredentialChoice(
            "clientsecret", client_id, children.get("tenantid"), children["clientsecret"]
        )
    else:
        credential = CredentialChoice("default")
    return StorageConnection(name, service_uris=tuple(uris), credential=credential)
