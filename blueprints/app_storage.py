"""The app's own Azure Storage: tables and blobs for read models, ledgers, the outbox and reports.

The workflows keep business data next to the task hub, in the storage account of the
``AzureWebJobsStorage`` connection (Azurite locally), found from the same settings the Functions
host reads (``storage_settings``): a connection string, or the identity-based settings
(``AzureWebJobsStorage__accountName`` or the service URIs, with a managed identity on Azure and
``DefaultAzureCredential`` elsewhere). Clients are created once per process and table or
container; the table or container is created on first use.

Table and container names can be prefixed with the ``WORKFLOW_STORAGE_PREFIX`` setting (letters
and digits), so two deployments or test runs can share one account without seeing each other.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import re
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient

from storage_settings import STORAGE_CONNECTION, StorageConnection, resolve_storage, service_client

__all__ = [
    "PREFIX_SETTING",
    "STORAGE_SETTING",
    "blob_container",
    "in_thread",
    "query_page",
    "reset_clients",
    "safe_key",
    "storage_connection",
    "table",
]

P = ParamSpec("P")
R = TypeVar("R")

STORAGE_SETTING = STORAGE_CONNECTION
PREFIX_SETTING = "WORKFLOW_STORAGE_PREFIX"

# Characters Azure Tables forbids in PartitionKey and RowKey, plus control characters.
_FORBIDDEN_KEY_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def storage_connection() -> StorageConnection:
    """Return the app's storage connection, resolved from the settings as the host does.

    Returns
    -------
    storage_settings.StorageConnection
        A connection string, or service URIs with a credential.

    Raises
    ------
    storage_settings.StorageSettingsError
        When the settings are missing, malformed or contradictory; the message names them.
    """
    return resolve_storage(connection=STORAGE_SETTING, services=("blob", "table"))


def _prefixed(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", os.environ.get(PREFIX_SETTING, "")) + name


@functools.cache
def _credential(connection: StorageConnection) -> Any:
    """One token credential per connection, shared by its clients (and its token cache)."""
    return connection.new_credential()


@functools.cache
def _table_client(connection: StorageConnection, name: str) -> TableClient:
    service = service_client(
        connection, "table", TableServiceClient, credential=_credential(connection)
    )
    try:
        service.create_table(name)
    except ResourceExistsError:
        pass
    return service.get_table_client(name)


@functools.cache
def _container_client(connection: StorageConnection, name: str) -> ContainerClient:
    service = service_client(
        connection, "blob", BlobServiceClient, credential=_credential(connection)
    )
    container = service.get_container_client(name)
    try:
        container.create_container()
    except ResourceExistsError:
        pass
    return container


def table(name: str) -> TableClient:
    """Return a client for one of the app's tables, creating the table on first use.

    Parameters
    ----------
    name : str
        The table name without the prefix (letters and digits, starting with a letter).

    Returns
    -------
    azure.data.tables.TableClient
        A synchronous client, shared by the process (the SDK clients are thread-safe).
    """
    return _table_client(storage_connection(), _prefixed(name))


def blob_container(name: str) -> ContainerClient:
    """Return a client for one of the app's blob containers, creating it on first use.

    Parameters
    ----------
    name : str
        The container name without the prefix (lowercase letters, digits and hyphens).

    Returns
    -------
    azure.storage.blob.ContainerClient
        A synchronous client, shared by the process.
    """
    return _container_client(storage_connection(), _prefixed(name).lower())


def reset_clients() -> None:
    """Forget the cached clients (after the connection setting or the prefix changed)."""
    _table_client.cache_clear()
    _container_client.cache_clear()
    _credential.cache_clear()


def safe_key(value: str) -> str:
    """Return ``value`` usable as a PartitionKey or RowKey (forbidden characters replaced by ``_``).

    Parameters
    ----------
    value : str
        An identifier chosen by a caller.

    Returns
    -------
    str
        The identifier with ``/ \\ # ?`` and control characters replaced.
    """
    return _FORBIDDEN_KEY_CHARS.sub("_", value)


async def in_thread(call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a blocking storage call from an async HTTP handler without stalling the event loop.

    Parameters
    ----------
    call : Callable[P, R]
        The synchronous SDK call.
    *args, **kwargs
        Its arguments.

    Returns
    -------
    R
        What the call returned.
    """
    return await asyncio.to_thread(call, *args, **kwargs)


def _encode_token(token: Any) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode_token(text: str) -> Any:
    try:
        token = json.loads(base64.urlsafe_b64decode(text.encode()))
    except (ValueError, TypeError) as error:
        raise ValueError("not a continuation token from this API") from error
    if not isinstance(token, dict):
        raise ValueError("not a continuation token from this API")
    return token


def query_page(
    client: TableClient,
    query_filter: str,
    parameters: dict[str, Any],
    top: int,
    continuation_token: str | None,
) -> tuple[list[Any], str | None]:
    """Return one page of a table query and the opaque token of the next page.

    Parameters
    ----------
    client : azure.data.tables.TableClient
        The table.
    query_filter : str
        An OData filter using ``@name`` placeholders (the SDK quotes the values, so a
        caller's text cannot change the filter); empty for the whole table.
    parameters : dict[str, Any]
        The placeholders' values.
    top : int
        The page size.
    continuation_token : str | None
        A token this function handed out, or None for the first page.

    Returns
    -------
    tuple[list[Any], str | None]
        The entities, in the table's key order, and the next page's token (None on the last).

    Raises
    ------
    ValueError
        When the continuation token is not one this function produced.
    """
    token = _decode_token(continuation_token) if continuation_token else None
    entities = (
        client.query_entities(query_filter, parameters=parameters, results_per_page=top)
        if query_filter
        else client.list_entities(results_per_page=top)
    )
    # by_page() returns an ItemPaged page iterator; its continuation_token is not in the stubs.
    pages: Any = entities.by_page(continuation_token=token)
    page = list(next(pages, []))
    return page, _encode_token(pages.continuation_token)
