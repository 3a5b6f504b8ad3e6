"""The app's own Azure Storage: tables and blobs for read models, ledgers, the outbox and reports.

The workflows keep business data next to the task hub, in the storage account named by the
``AzureWebJobsStorage`` setting (Azurite locally). Clients are created once per process and
table or container; the table or container is created on first use.

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

__all__ = [
    "STORAGE_SETTING",
    "blob_container",
    "connection_string",
    "in_thread",
    "query_page",
    "reset_clients",
    "safe_key",
    "table",
]

P = ParamSpec("P")
R = TypeVar("R")

STORAGE_SETTING = "AzureWebJobsStorage"
PREFIX_SETTING = "WORKFLOW_STORAGE_PREFIX"

# The SDKs do not understand the "UseDevelopmentStorage=true" shorthand the Functions host does;
# this is Azurite's published well-known account (learn.microsoft.com, "Use Azurite").
_DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)
# Characters Azure Tables forbids in PartitionKey and RowKey, plus control characters.
_FORBIDDEN_KEY_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def connection_string() -> str:
    """Return the storage connection string of the app (``AzureWebJobsStorage``).

    Returns
    -------
    str
        The connection string, with the development-storage shorthand expanded for Azurite.

    Raises
    ------
    RuntimeError
        When the setting is missing.
    """
    value = os.environ.get(STORAGE_SETTING, "").strip()
    if not value:
        raise RuntimeError(
            f"The {STORAGE_SETTING} setting is not set; the workflows keep their data in it."
        )
    if value.replace(" ", "").lower().startswith("usedevelopmentstorage=true"):
        return _DEVELOPMENT_STORAGE
    return value


def _prefixed(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", os.environ.get(PREFIX_SETTING, "")) + name


@functools.cache
def _table_client(connection: str, name: str) -> TableClient:
    service = TableServiceClient.from_connection_string(connection)
    try:
        service.create_table(name)
    except ResourceExistsError:
        pass
    return service.get_table_client(name)


@functools.cache
def _container_client(connection: str, name: str) -> ContainerClient:
    service = BlobServiceClient.from_connection_string(connection)
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
    return _table_client(connection_string(), _prefixed(name))


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
    return _container_client(connection_string(), _prefixed(name).lower())


def reset_clients() -> None:
    """Forget the cached clients (after the connection setting or the prefix changed)."""
    _table_client.cache_clear()
    _container_client.cache_clear()


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
