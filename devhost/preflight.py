"""Checks ``devhost start`` makes before it serves: the app folder, the port, the storage account.

Each failure is a :class:`StartupError` holding one sentence that names the thing and what to
do; the command line prints it and exits with code 2 (the traceback only with ``--verbose``).
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableServiceClient as SyncTableServiceClient
from azure.data.tables.aio import TableServiceClient

from devhost.storage_settings import StorageConnection, service_client

__all__ = ["StartupError", "check_app_folder", "check_port", "check_storage", "storage_failure"]

# A start-up check should answer in seconds: one attempt, short timeouts (the SDK's default
# retries would keep a user waiting about a minute for an unreachable account).
_PROBE_OPTIONS = {"retry_total": 0, "connection_timeout": 5, "read_timeout": 10}


class StartupError(Exception):
    """Something the host needs before serving is missing; the message says what to do."""


def check_app_folder(app_dir: Path, script: str = "function_app.py") -> None:
    """Refuse a ``--app`` that is not a folder holding ``function_app.py``."""
    if not app_dir.exists():
        raise StartupError(
            f"The app folder {app_dir} does not exist: point --app at the folder that holds "
            f"your {script}."
        )
    if not app_dir.is_dir():
        raise StartupError(f"--app {app_dir} is a file: point --app at the folder that holds it.")
    if not (app_dir / script).is_file():
        raise StartupError(
            f"{app_dir} has no {script}: point --app at your app's folder (the one with "
            f"{script} and host.json)."
        )


def port_taken(host: str, port: int, error: OSError) -> StartupError:
    """The sentence for a port the host cannot listen on."""
    if error.errno == errno.EADDRINUSE:
        return StartupError(
            f"Port {port} on {host} is already in use (another host or 'func start'?): stop "
            "it, or choose another port with --port."
        )
    if error.errno == errno.EACCES:
        return StartupError(
            f"Port {port} on {host} needs more privileges than this user has: choose a port "
            "above 1023 with --port."
        )
    if error.errno == errno.EADDRNOTAVAIL or isinstance(error, socket.gaierror):
        return StartupError(
            f"--host {host} is not an address of this machine: use 127.0.0.1 or 0.0.0.0."
        )
    return StartupError(f"Cannot listen on {host}:{port}: {error.strerror or error}.")


def check_port(host: str, port: int) -> None:
    """Fail fast when ``host:port`` cannot be listened on, before anything else starts."""
    if not 0 < port < 65536:
        raise StartupError(f"--port {port} is not a port number: use 1 to 65535.")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise port_taken(host, port, exc) from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As the server will: a port held only by connections in TIME_WAIT is free to it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise port_taken(host, port, exc) from exc


def _public_url(url: str) -> str:
    """A service URL without its query (a SAS token there is a secret)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _reason(error: BaseException) -> str:
    """The innermost OS-level reason of a connection failure, in a few words."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno).lower()
        seen = seen.__cause__ or seen.__context__
    return "no answer"


def _table_url(storage: StorageConnection) -> str:
    """The account's table service URL (building a client makes no request)."""
    if storage.connection_string is None:
        return storage.service_uri("table") or storage.setting
    return SyncTableServiceClient.from_connection_string(storage.connection_string).url


def _credential_hint(storage: StorageConnection) -> str:
    """What to do when no token could be had, for the credential the settings chose."""
    name = storage.setting
    credential = storage.credential
    if credential is not None and credential.kind == "managedidentity":
        return (
            "a managed identity exists only on Azure; on this machine remove "
            f"{name}__credential (and __clientId) to use your 'az login'"
        )
    if credential is not None and credential.kind == "clientsecret":
        return f"check {name}__tenantId, __clientId and __clientSecret"
    return "sign in with 'az login' (DefaultAzureCredential also reads AZURE_CLIENT_ID and friends)"


def storage_failure(error: Exception, storage: StorageConnection) -> StartupError | None:
    """The sentence for a storage error at start-up, or None when it is not a known mistake."""
    where = _public_url(_table_url(storage))
    setting = storage.setting
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        hint = "start Azurite (or drop --no-azurite)" if storage.development else "your network"
        return StartupError(
            f"The storage account at {where} cannot be reached ({_reason(error)}): check "
            f"{setting} and {hint}."
        )
    if isinstance(error, ClientAuthenticationError) and error.response is None:
        # azure-identity found no credential, or the identity platform refused it.
        chosen = storage.credential.describe() if storage.credential else "the credential"
        return StartupError(
            f"No token for the storage account at {where} could be had with {chosen} "
            f"({setting}): {_credential_hint(storage)}."
        )
    code = getattr(error, "error_code", None)
    code = getattr(code, "value", code)  # the tables SDK gives an enum member
    if isinstance(error, HttpResponseError) and error.status_code in (401, 403):
        if storage.credential is not None:
            return StartupError(
                f"The storage account at {where} refused {storage.credential.describe()} "
                f"({code or error.status_code}): grant that identity the Storage Blob Data Owner, "
                "Storage Queue Data Contributor and Storage Table Data Contributor roles on the "
                "account (docs/deploy.md)."
            )
        return StartupError(
            f"The storage account at {where} refused the credentials of {setting} "
            f"({code or error.status_code}): check the account key in the connection string."
        )
    if isinstance(error, HttpResponseError):
        return StartupError(
            f"The storage account at {where} answered {error.status_code} "
            f"({code or error.reason}): check {setting}."
        )
    return None


async def check_storage(storage: StorageConnection) -> None:
    """Make one request to the account's table service; raise a StartupError when it fails."""
    credential = storage.new_credential(asynchronous=True)
    client = service_client(
        storage, "table", TableServiceClient, credential=credential, **_PROBE_OPTIONS
    )
    try:
        async with client:
            async for _ in client.list_tables(results_per_page=1):
                break
    except Exception as exc:
        failure = storage_failure(exc, storage)
        if failure is None:
            raise
        raise failure from exc
    finally:
        if credential is not None:
            await credential.close()
