"""Where the host's keys live, and the guard that checks requests against them.

The real host keeps its keys in the blob container ``azure-webjobs-secrets`` of the
``AzureWebJobsStorage`` account (``BlobStorageSecretsRepository``): ``{hostId}/host.json`` for the
master, host and system keys, ``{hostId}/{function}.json`` for the keys of one function, in the
JSON it serialises with Newtonsoft. :class:`BlobKeyStore` does the same, so keys persist across
restarts, are shared by hosts of one app, stay out of the repository, and are readable with
Storage Explorer. :class:`MemoryKeyStore` serves in-process tests.

The host ID follows ``ScriptHostIdProvider``: the ``AzureFunctionsWebHost__hostid`` setting, else
the site name on App Service, else (locally) the machine name and a hash of the app's path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
import time
from pathlib import Path
from typing import Protocol

from aiohttp import web
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient

from devhost.storage_settings import StorageConnection, service_client
from devhost.store.azure_layout import expand_connection_string
from devhost.web.keys import (
    DURABLE_SYSTEM_KEY,
    AuthLevel,
    HostKeys,
    function_allows,
    function_keys_from_json,
    function_secrets_json,
    function_unauthorized,
    key_level,
    new_key_value,
    presented_key,
    webhook_allows,
    webhook_unauthorized,
)

log = logging.getLogger("devhost.keys")

SECRETS_CONTAINER = "azure-webjobs-secrets"
HOST_SECRETS_BLOB = "host.json"
HOST_ID_SETTING = "AzureFunctionsWebHost__hostid"
MAX_HOST_ID_LENGTH = 32  # ScriptConstants.MaximumHostIdLength
# SecretManager re-reads its keys when an unknown key is presented, at most once a minute, so
# a key added in storage works without a restart and bad keys cannot hammer storage.
REFRESH_THROTTLE_SECONDS = 60.0


def _stable_hash(value: str) -> int:
    """``Utility.GetStableHash``: ``h = h * 31 + c`` over UTF-16 code units, in an int32."""
    result = 23
    data = value.encode("utf-16-le")
    for index in range(0, len(data), 2):
        result = (result * 31 + int.from_bytes(data[index : index + 2], "little")) & 0xFFFFFFFF
    return result - (1 << 32) if result >= 1 << 31 else result


def default_host_id(app_dir: str | Path) -> str:
    """The host ID the real host would use for this app (see the module docstring)."""
    configured = os.environ.get(HOST_ID_SETTING, "").strip()
    if configured:
        return configured.lower()
    site = os.environ.get("WEBSITE_SITE_NAME", "").strip()
    if site:
        host_id = site
    else:
        machine = re.sub(r"[^0-9A-Za-z]", "", socket.gethostname())
        host_id = f"{machine}-{abs(_stable_hash(str(Path(app_dir).resolve())))}"
    return host_id[:MAX_HOST_ID_LENGTH].lower().rstrip("-")


class KeyStore(Protocol):
    """Reads and writes the secrets files of one host ID."""

    async def read_host(self) -> str | None:
        """The host secrets file, or None when there is none."""
        ...

    async def write_host(self, text: str, *, overwrite: bool) -> bool:
        """Write the host secrets file; False when it exists and ``overwrite`` is False."""
        ...

    async def read_functions(self) -> dict[str, str]:
        """Function name (lower case) -> its secrets file."""
        ...

    async def write_function(self, name: str, text: str) -> None:
        """Write one function's secrets file."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryKeyStore:
    """Keys in memory: for in-process tests (``DurableTestHost.http(enforce_keys=True)``)."""

    def __init__(self) -> None:
        self.host: str | None = None
        self.functions: dict[str, str] = {}

    async def read_host(self) -> str | None:
        return self.host

    async def write_host(self, text: str, *, overwrite: bool) -> bool:
        if self.host is not None and not overwrite:
            return False
        self.host = text
        return True

    async def read_functions(self) -> dict[str, str]:
        return dict(self.functions)

    async def write_function(self, name: str, text: str) -> None:
        self.functions[name.lower()] = text

    async def close(self) -> None:
        return None


class BlobKeyStore:
    """Keys in ``azure-webjobs-secrets/{hostId}/`` of a storage account (Azurite or Azure).

    Parameters
    ----------
    connection_string : str | StorageConnection
        The account: a connection string (``UseDevelopmentStorage=true`` is expanded for
        Azurite), or a connection resolved from the settings (identity-based ones included).
    host_id : str
        The folder of this host's secrets files.
    """

    def __init__(self, connection_string: str | StorageConnection, host_id: str) -> None:
        self.host_id = host_id
        connection = (
            connection_string
            if isinstance(connection_string, StorageConnection)
            else StorageConnection("connection string", expand_connection_string(connection_string))
        )
        self._credential = connection.new_credential(asynchronous=True)
        self._service = service_client(
            connection, "blob", BlobServiceClient, credential=self._credential
        )
        self._container = self._service.get_container_client(SECRETS_CONTAINER)
        self._created = False

    async def _ensure_container(self) -> None:
        if self._created:
            return
        try:
            await self._container.create_container()
        except ResourceExistsError:
            pass
        self._created = True

    async def _read(self, name: str) -> str | None:
        try:
            downloader = await self._container.download_blob(name, encoding="utf-8")
        except ResourceNotFoundError:
            return None
        return str(await downloader.readall())

    async def read_host(self) -> str | None:
        return await self._read(f"{self.host_id}/{HOST_SECRETS_BLOB}")

    async def write_host(self, text: str, *, overwrite: bool) -> bool:
        await self._ensure_container()
        try:
            await self._container.upload_blob(
                f"{self.host_id}/{HOST_SECRETS_BLOB}", text.encode("utf-8"), overwrite=overwrite
            )
        except ResourceExistsError:
            return False
        return True

    async def read_functions(self) -> dict[str, str]:
        found: dict[str, str] = {}
        try:
            async for blob in self._container.list_blobs(name_starts_with=f"{self.host_id}/"):
                name = blob.name.split("/", 1)[1]
                if name == HOST_SECRETS_BLOB or not name.endswith(".json") or "/" in name:
                    continue
                text = await self._read(blob.name)
                if text is not None:
                    found[name.removesuffix(".json").lower()] = text
        except ResourceNotFoundError:  # no container yet: no function keys
            return {}
        return found

    async def write_function(self, name: str, text: str) -> None:
        await self._ensure_container()
        await self._container.upload_blob(
            f"{self.host_id}/{name.lower()}.json", text.encode("utf-8"), overwrite=True
        )

    async def close(self) -> None:
        await self._service.close()
        if self._credential is not None:
            await self._credential.close()


async def load_or_create_host_keys(store: KeyStore) -> HostKeys:
    """The host's keys, generated and stored on first use, as the real host does.

    Two hosts starting together may both generate keys; only the first write wins
    (``overwrite=False``) and the loser reads the winner's keys. A file without the durable
    system key gets one (``GetOrCreateExtensionKey``).
    """
    text = await store.read_host()
    if text is None:
        generated = HostKeys.generate()
        if await store.write_host(generated.to_secrets_json(), overwrite=False):
            return generated
        text = await store.read_host()
        if text is None:
            raise RuntimeError("the host secrets file vanished while it was being created")
    keys = HostKeys.from_secrets_json(text)
    if DURABLE_SYSTEM_KEY not in keys.system_keys:
        keys.system_keys[DURABLE_SYSTEM_KEY] = new_key_value()
        await store.write_host(keys.to_secrets_json(), overwrite=True)
    return keys


async def add_function_key(store: KeyStore, function_name: str, key_name: str = "default") -> str:
    """Create (or replace) a key of one function and return its value."""
    existing = (await store.read_functions()).get(function_name.lower())
    keys = function_keys_from_json(existing) if existing else {}
    keys[key_name] = new_key_value()
    await store.write_function(function_name, function_secrets_json(keys))
    return keys[key_name]


class KeyGuard:
    """Checks requests against the host's keys; built by :meth:`open`.

    Also holds ``rpc_token``: the path segment that the binding's ``rpcBaseUrl`` carries when
    keys are enforced. The real host serves the client's RPC calls on a second listener bound
    to 127.0.0.1 without any check; this host serves them on its one port, so with keys on it
    answers them only for a loopback peer that knows this per-process token.
    """

    def __init__(
        self, store: KeyStore, host_keys: HostKeys, function_keys: dict[str, dict[str, str]]
    ) -> None:
        self.store = store
        self.host_keys = host_keys
        self._function_keys = function_keys
        self._refreshed_at = float("-inf")  # the first unknown key may refresh at once
        self._lock = asyncio.Lock()
        self.rpc_token = secrets.token_urlsafe(24)

    @classmethod
    async def open(cls, store: KeyStore) -> KeyGuard:
        """Load (or create) the keys from ``store``."""
        host_keys = await load_or_create_host_keys(store)
        return cls(store, host_keys, await _read_function_keys(store))

    @property
    def system_key(self) -> str:
        """The ``durabletask_extension`` key that the webhook URLs carry."""
        return self.host_keys.durable_system_key

    async def _refresh(self) -> bool:
        async with self._lock:
            if time.monotonic() - self._refreshed_at < REFRESH_THROTTLE_SECONDS:
                return False
            self._refreshed_at = time.monotonic()
            try:
                self.host_keys = await load_or_create_host_keys(self.store)
                self._function_keys = await _read_function_keys(self.store)
            except Exception:
                log.exception("Re-reading the host keys failed; keeping the keys loaded before")
                return False
            return True

    async def _level(
        self, request: web.Request, function_name: str | None
    ) -> tuple[str | None, AuthLevel]:
        value = presented_key(request)
        fn_keys = self._function_keys.get((function_name or "").lower())
        name, level = key_level(value, self.host_keys, fn_keys)
        if value and not level and await self._refresh():
            fn_keys = self._function_keys.get((function_name or "").lower())
            name, level = key_level(value, self.host_keys, fn_keys)
        return name, level

    async def check_function(
        self, request: web.Request, function_name: str, auth_level: str
    ) -> web.Response | None:
        """None when the request may call the function, else the host's 401."""
        if auth_level.lower() == "anonymous":
            return None
        _, level = await self._level(request, function_name)
        return None if function_allows(auth_level, level) else function_unauthorized()

    async def check_webhook(self, request: web.Request) -> web.Response | None:
        """None when the request may use the durable webhook, else the host's 401."""
        name, level = await self._level(request, None)
        return None if webhook_allows(name, level) else webhook_unauthorized()


async def _read_function_keys(store: KeyStore) -> dict[str, dict[str, str]]:
    keys: dict[str, dict[str, str]] = {}
    for name, text in (await store.read_functions()).items():
        try:
            keys[name] = function_keys_from_json(text)
        except ValueError:
            log.warning("Ignoring the unreadable secrets file of function '%s'", name)
    return keys
