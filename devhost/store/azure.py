"""Azure Storage (or Azurite) backend, laid out like DurableTask.AzureStorage.

Tables ``{Hub}Instances`` and ``{Hub}History``, control queues ``{hub}-control-00..03``
holding the durable inbox, blob container ``{hub}-largemessages`` for values too large for a
table property or a queue message (``devhost.store.azure_layout`` has the encodings). The data
can be browsed with Azure Storage Explorer.

Write-path cost (what the 150 orchestrations/s target rests on): a checkpoint is one
entity-group transaction on the History table (new rows plus the sentinel; more transactions
only past 100 rows) and one upsert of the Instances row; a message is one queue request. No
write reads first; tables, queues and the container are created only in :meth:`AzureStore.open`.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import gzip
import hmac
import inspect
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import aiohttp
from azure.core.async_paging import AsyncPageIterator
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.core.pipeline import AsyncPipeline, PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy, SansIOHTTPPolicy
from azure.core.pipeline.transport import AioHttpTransport, AsyncHttpTransport
from azure.core.rest import HttpRequest
from azure.core.utils import CaseInsensitiveDict
from azure.data.tables import TableEntity
from azure.data.tables._authentication import SharedKeyCredentialPolicy
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.blob.aio import LinearRetry as AsyncLinearRetry
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from devhost.storage_settings import StorageConnection, service_client
from devhost.store.azure_layout import (
    BLOB_SUFFIX,
    MAX_TRANSACTION_OPERATIONS,
    SENTINEL_ROW_KEY,
    TableRow,
    control_queue_index,
    decode_token,
    delete_transaction,
    encode_token,
    entity_address,
    entity_to_event,
    entity_to_instance,
    event_to_entity,
    expand_connection_string,
    fits_as_is,
    from_table_value,
    history_row_key,
    instance_filter,
    instance_to_entity,
    odata_string,
    sanitize_key,
    table_row,
    too_large_columns,
    transaction_error,
    transactions,
    unsanitize_key,
    write_transaction,
)
from devhost.store.base import (
    TERMINAL_STATUSES,
    Checkpoint,
    InstanceQuery,
    InstanceRow,
    Store,
    StoredHistory,
    StoredMessage,
    split_copies,
)
from devhost.store.lean_http import LeanWriteTransport, StoreRequest
from devhost.store.write_window import WriteWindow

logger = logging.getLogger(__name__)

# A queue message holds at most 64 KiB, and the SDK's XML escaping can grow the text, so a
# message longer than this many (ASCII) characters keeps its body in a blob.
_MAX_QUEUE_MESSAGE_CHARS = 48 * 1024
# How long read_messages hides messages while it pages through a queue; they are made visible
# again right after. Long enough to page through a queue on a busy machine (a message seen
# twice is kept once), short because a reader killed meanwhile leaves them hidden this long and
# the next start waits for them.
_READ_VISIBILITY_SECONDS = 15
# At most this many requests at once when one call fans out.
_FAN_OUT = 16
# Instance writes (a row, a checkpoint) in flight at once, whatever asks for them: the group
# commit, a client's write, a start; those a client waits for go before the background's
# (devhost.store.write_window). A write holds its slot through its SDK's quick retries (about a
# second) but not through RetryingStore's backoff, which waits outside it. Azurite serves requests
# one after the other, so every write sent ahead of a purge, a listing or a status read delays it.
# Without a window, a load of 100 orchestrations kept about 100 writes in Azurite's queue: the
# retention job's purges took 1-3 s each, it purged under a third of what the load finished, and
# the growing hub slowed everything (docs/benchmarks.md, the long run). With it the job keeps up.
# A write is two or three requests one after the other: 16 keep Azurite busy (8 cost throughput in
# the ceiling benchmark), and at Azure's tens of milliseconds a request they allow hundreds of
# checkpoints a second.
WRITE_WINDOW = 16
# What the SDKs retry, and what devhost.store.retrying adds. Every request first goes through
# its SDK's retry policy. azure-data-tables uses azure-core's RetryPolicy: 408, 429 and 5xx
# (not 501/505) for every method but POST, which is resent only after a 500/503/504; a
# connection error only for idempotent methods; by default 10 tries, waits of 0.8 s x 2^n,
# Retry-After honoured. The storage SDKs (queues, blobs) use their own ExponentialRetry: the
# same statuses and any connection error for every method, 3 retries after about 15, 18 and
# 24 s. Those waits suit a batch job, not a host whose caller waits for its 202: here each SDK
# retries a blip (a reset socket, one busy answer) three times within about a second, and
# RetryingStore retries whole store calls beyond that (see its module docstring).
_TABLE_RETRIES: dict[str, Any] = {
    "retry_total": 3,
    "retry_backoff_factor": 0.2,
    "retry_backoff_max": 1.0,
}


def _storage_retries() -> AsyncLinearRetry:
    """Three quick retries for the queue or the blob client (each client owns its policy).

    The queue package exports only its synchronous policies; the blob package's async one is
    the same shared storage code."""
    return AsyncLinearRetry(backoff=0.25, random_jitter_range=0.15, retry_total=3)  # type: ignore[arg-type]


# The SDK default is 300 s for both; a host that waits that long for a dead socket looks
# hung. Table queries and blob transfers here are small.
_CONNECT_TIMEOUT_SECONDS = 10
_READ_TIMEOUT_SECONDS = 60
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})

_T = TypeVar("_T")


async def _bounded(calls: Iterable[Awaitable[_T]], limit: int = _FAN_OUT) -> list[_T]:
    """Await ``calls`` concurrently, at most ``limit`` at a time; results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def run(call: Awaitable[_T]) -> _T:
        async with semaphore:
            return await call

    return list(await asyncio.gather(*(run(call) for call in calls)))


async def _send(
    table: TableClient,
    writes: AsyncPipeline[Any, Any] | None,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
) -> tuple[Any, bytes, list[Any]]:
    """Send a write through ``writes`` (or the table client's whole pipeline): the answer,
    its body, and the attempts the retry policy made before it (azure-core's
    ``RequestHistory``; empty through the whole pipeline, which does not hand them back).

    Through ``writes`` the request is a ``StoreRequest`` (azure-core's
    ``pipeline.transport.HttpRequest``), which ``LeanWriteTransport`` sends itself on an
    ``http://`` endpoint, and which every policy and transport still takes, rather than the
    newer ``azure.core.rest`` one:
    that request and its response reach their attributes through backward-compatibility
    lookups, about 35 of the 300 microseconds of CPU a write takes here (an Instances row,
    measured alternating the two in one process). The same headers and body are sent."""
    if writes is None:
        request = HttpRequest(method, url, headers=headers, content=body)
        response = await table._client.send_request(request, stream=True)
        await response.read()
        return response, response.content, []
    legacy = StoreRequest(method, url, headers=headers)
    legacy.set_bytes_body(body)
    answer = await writes.run(legacy)
    response = answer.http_response
    return response, response.body(), list(answer.context.get("history") or [])


def _may_have_been_applied(attempts: list[Any]) -> bool:
    """Whether an earlier attempt of a request may have reached the service and been applied:
    one whose answer was lost (a dropped connection, a timeout) or was a server error; not one
    refused before it was sent, nor one the service turned away as too busy."""
    for attempt in attempts:
        error = getattr(attempt, "error", None)
        if error is not None:
            if not isinstance(error, ServiceRequestError):
                return True
            continue
        status = getattr(getattr(attempt, "http_response", None), "status_code", None)
        if status is not None and status >= 500 and status != 503:
            return True
    return False


@dataclass
class _PreparedCheckpoint:
    """What one checkpoint writes: blobs (name, text), the history's entity-group
    transactions (the sentinel's last), the rows to insert rather than replace, the row, and
    whether it may rewrite rows the stored sentinel counts (a rewind, a resent write)."""

    uploads: list[tuple[str, str]]
    batches: list[list[TableRow]]
    inserted: set[str]
    instance: TableRow | None  # None: the row is left for a later checkpoint
    rewrites: bool = True


def _stored_rows_with_the_sentinel(
    written: _PreparedCheckpoint, stored_rows: int | None
) -> _PreparedCheckpoint | None:
    """A write of a whole history (from row 0) in several transactions, reordered so that a
    crash between them leaves the stored execution readable whole: the rows the store may
    hold (the ordinals below ``stored_rows``: all a stored sentinel can name) go in the
    sentinel's transaction, and the rows past them, which no stored sentinel names, in the
    transactions before it. None when ``stored_rows`` is not known or those rows and the
    sentinel do not fit one transaction, and when the store holds no row (a first write: no
    stored sentinel names any, and the usual split sends one transaction fewer).

    A continue-as-new carrying over more events than a transaction holds (or a wide fan-out
    in a new generation's first episodes over a stored execution with a longer history) had
    its first rows replace the stored execution's before the sentinel named the new one: a
    kill between the two left a history read as torn (docs/chaos.md)."""
    if not stored_rows:
        return None
    rows = [row for batch in written.batches for row in batch]
    sentinel, rows = rows[-1], rows[:-1]
    last = [*rows[:stored_rows], sentinel]
    if len(list(transactions(last))) != 1:
        return None
    # Nobody reads the rows before the sentinel's transaction lands: they may go side by side.
    return replace(written, batches=[*transactions(rows[stored_rows:]), last], rewrites=False)


class _RowExists(HttpResponseError):
    """A transaction inserting a row that is already stored."""


@dataclass(frozen=True)
class QueueReceipt:
    """Where a stored message lives: what ``delete_messages`` needs."""

    queue: str
    message_id: str
    pop_receipt: str
    blob_name: str | None = None


class _KeepAliveTransport(AioHttpTransport):
    """azure-core's aiohttp transport with idle connections closed after 2 s.

    Azurite (Node's HTTP server) closes idle keep-alive sockets after 5 s; a request sent on a
    socket at the moment the server closes it fails with ECONNRESET, and under load the SDK's
    retries can all hit such sockets. Closing ours first avoids the race.
    """

    async def open(self) -> None:
        if not self.session and self._session_owner:  # type: ignore[has-type]
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(keepalive_timeout=2, limit=100),
                trust_env=self._use_env_settings,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        await super().open()


# Policies of the table client's pipeline that the checkpoint writes (requests built here, with
# their own headers, whose answers are read here) do without: request IDs, the user agent,
# JSON decoding of the answer, redirects, logging and tracing. Together about 130 of the
# 230 microseconds of CPU the pipeline took per request, three requests per orchestration.
_WRITE_PATH_SKIPS = frozenset(
    {
        "RequestIdPolicy",
        "UserAgentPolicy",
        "ContentDecodePolicy",
        "AsyncRedirectPolicy",
        "NetworkTraceLoggingPolicy",
        "DistributedTracingPolicy",
        "HttpLoggingPolicy",
    }
)


def _write_pipeline(client: TableClient) -> AsyncPipeline[Any, Any] | None:
    """The table client's own pipeline (its transport; headers, proxy, authentication,
    retries and request counting, in order) without ``_WRITE_PATH_SKIPS``; None if this SDK
    version keeps its pipeline elsewhere (the writes then use the whole pipeline)."""
    try:
        pipeline = client._client._client._pipeline
        policies = [getattr(p, "_policy", p) for p in pipeline._impl_policies]
        transport = pipeline._transport
    except AttributeError:
        return None
    # A pipeline chains its policies by setting each one's ``next``: the write pipeline gets
    # its own copies of those (retries, token authentication), or it would rewire the client's.
    kept = [
        copy.copy(p) if isinstance(p, AsyncHTTPPolicy) else p
        for p in policies
        if type(p).__name__ not in _WRITE_PATH_SKIPS
    ]
    kept = [_SharedKeySigning.of(p) if type(p) is SharedKeyCredentialPolicy else p for p in kept]
    return AsyncPipeline(transport=transport, policies=_chain_sans_io(kept))


class _SharedKeySigning(SharedKeyCredentialPolicy):
    """The tables SDK's SharedKey signing of a write: the same Authorization header, made
    with less work. The SDK lower-cases every header into a dict to read three, parses the
    address twice and builds a yarl URL of it, and decodes the account key, for every request:
    about half of the write pipeline's CPU. Here the three headers are looked up, the canonical
    resource is kept for each address (the SDK's own text; an instance's row is written two or
    three times, every checkpoint posts to one address), the key is decoded when it changes,
    and the HMAC is one call. Equal to the SDK's: tests/devhost/test_store_write_pipeline.py.
    """

    def __init__(self, policy: SharedKeyCredentialPolicy) -> None:
        super().__init__(policy._credential, is_emulated=policy.is_emulated)
        self._resources: dict[str, str] = {}
        self._key: tuple[str, bytes] = ("", b"")

    @classmethod
    def of(cls, policy: SharedKeyCredentialPolicy) -> SharedKeyCredentialPolicy:
        """This signing with the SDK policy's key, or that policy if this SDK version keeps
        its key elsewhere."""
        try:
            return cls(policy)
        except AttributeError:
            return policy

    def sign_request(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        headers = http.headers
        if not isinstance(headers, CaseInsensitiveDict):  # not a request built by _send
            super().sign_request(request)
            return
        try:
            resource = self._resources.get(http.url)
            if resource is None:
                resource = self._get_canonicalized_resource(
                    request
                ) + self._get_canonicalized_resource_query(http)
                if len(self._resources) >= _SIGNED_ADDRESSES:
                    self._resources.clear()
                self._resources[http.url] = resource
            name, key = self._credential.named_key
            if key != self._key[0]:
                self._key = (key, base64.b64decode(key.encode("utf-8")))
            text = (
                f"{http.method}\n{headers.get('content-md5') or ''}\n"
                f"{headers.get('content-type') or ''}\n{headers.get('x-ms-date') or ''}\n"
                f"{resource}"
            )
            signature = hmac.digest(self._key[1], text.encode("utf-8"), "sha256")
            headers["Authorization"] = f"SharedKey {name}:{base64.b64encode(signature).decode()}"
        except Exception:  # noqa: BLE001 - the SDK's signing raises its own error for this
            super().sign_request(request)


# Canonical resources _SharedKeySigning keeps (addresses of recent instance rows).
_SIGNED_ADDRESSES = 4096


def _is_plain(policy: SansIOHTTPPolicy[Any, Any]) -> bool:
    """Whether none of the policy's steps is a coroutine function (none of azure-core's and
    the tables SDK's is; a step returning an awaitable needs azure-core's own runner)."""
    return not any(
        inspect.iscoroutinefunction(getattr(policy, step))
        for step in ("on_request", "on_response", "on_exception")
    )


def _chain_sans_io(policies: list[Any]) -> list[Any]:
    """``policies`` with each run of plain SansIO policies (headers, proxy, signing, hosts;
    the request counter after the retries) as one ``_SansIOChain``."""
    chained: list[Any] = []
    run: list[SansIOHTTPPolicy[Any, Any]] = []
    for policy in [*policies, None]:
        if isinstance(policy, SansIOHTTPPolicy) and _is_plain(policy):
            run.append(policy)
            continue
        if run:
            chained.append(_SansIOChain(run))
            run = []
        if policy is not None:
            chained.append(policy)
    return chained


class _SansIOChain(AsyncHTTPPolicy[Any, Any]):
    """Several SansIO policies as one step of a pipeline: what azure-core's
    ``_SansIOAsyncHTTPPolicyRunner`` does for each (``on_request`` in order; ``on_response``,
    or ``on_exception`` on a failure, in reverse), without its coroutine and two checks of
    each step's result for an awaitable per policy: about a fifth of the pipeline's CPU per
    request (five such policies on a shared-key write). A failure reaches the same
    ``on_exception`` steps as through nested runners: those of the policies whose
    ``on_request`` returned, less any whose ``on_response`` already ran.
    """

    def __init__(self, policies: list[SansIOHTTPPolicy[Any, Any]]) -> None:
        super().__init__()
        self.policies = policies

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        policies = self.policies
        entered = 0  # policies whose on_request returned and whose on_response has not run
        try:
            for policy in policies:
                policy.on_request(request)
                entered += 1
            response = await self.next.send(request)
            while entered:
                entered -= 1
                policies[entered].on_response(request, response)
        except Exception as error:
            failure = error
            while entered:
                entered -= 1
                try:
                    policies[entered].on_exception(request)
                except Exception as replaced:  # as a runner's own step raising would
                    failure = replaced
            if failure is error:
                raise
            raise failure from error
        return response


class AzureStore(Store):
    """Task-hub storage in an Azure Storage account (or Azurite).

    Parameters
    ----------
    connection_string
        ``UseDevelopmentStorage=true`` (Azurite on its default ports), an explicit
        ``DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;...`` string, or a
        :class:`~devhost.storage_settings.StorageConnection` resolved from the app's settings
        (identity-based ones included).
    task_hub
        The task hub name (3-45 letters and digits, starting with a letter).
    partition_count
        Number of control queues (DTFx ``partitionCount``, default 4).
    write_window
        Instance writes (``write_row``, ``write_checkpoint``) in flight at once; the others
        wait their turn, those a client waits for (``for_a_client``) before the background's,
        each in order. Reads, listings, deletes and queue messages do not wait for them.
        None: no limit (the benchmark's "storage only").

    Notes
    -----
    One client per service lives as long as the store, so HTTP connections are reused.
    Datetimes of instance rows should be timezone-aware UTC; they are read back as such.
    """

    def __init__(
        self,
        connection_string: str | StorageConnection,
        task_hub: str,
        *,
        partition_count: int = 4,
        write_window: int | None = WRITE_WINDOW,
    ):
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", task_hub):
            raise ValueError(
                f"invalid task hub name {task_hub!r}: use 3-45 letters and digits, "
                "starting with a letter"
            )
        self.task_hub = task_hub
        self._operations = 0
        self._writes = WriteWindow(write_window)
        # The latest pop receipt of each message this store put or read, by (queue, id):
        # reading a message again changes its receipt, and a delete with the old one fails.
        self._pop_receipts: dict[tuple[str, str], str] = {}
        connection = (
            connection_string
            if isinstance(connection_string, StorageConnection)
            else StorageConnection("connection string", expand_connection_string(connection_string))
        )
        # One token credential for the three clients; None for a connection string.
        self._credential = connection.new_credential(asynchronous=True)
        options: dict[str, Any] = {
            # Runs for every HTTP request (each retry, each page of a query): exactly what
            # count_operations reports.
            "raw_request_hook": self._count_request,
            # With environment settings on, aiohttp looks up .netrc and the proxy variables in
            # a worker thread on every request; only proxies can matter to shared-key requests.
            "use_env_settings": any(name.lower() in _PROXY_VARIABLES for name in os.environ),
        }
        self._use_env_settings = options["use_env_settings"]

        def build(service: str, client_class: type[_T], **retries: Any) -> _T:
            return service_client(
                connection,
                service,
                client_class,
                credential=self._credential,
                transport=self._transport(),
                **options,
                **retries,
            )

        self._table_service = build("table", TableServiceClient, **_TABLE_RETRIES)
        self._queue_service = build("queue", QueueServiceClient, retry_policy=_storage_retries())
        self._blob_service = build("blob", BlobServiceClient, retry_policy=_storage_retries())
        self._instances: TableClient = self._table_service.get_table_client(f"{task_hub}Instances")
        self._history: TableClient = self._table_service.get_table_client(f"{task_hub}History")
        self._history_writes = _write_pipeline(self._history)
        self._instance_writes = _write_pipeline(self._instances)
        hub = task_hub.lower()
        self._control_queues: list[QueueClient] = [
            self._queue_service.get_queue_client(f"{hub}-control-{index:02d}")
            for index in range(partition_count)
        ]
        self._queues_by_name = {queue.queue_name: queue for queue in self._control_queues}
        self._container = self._blob_service.get_container_client(f"{hub}-largemessages")

    def _transport(self) -> AsyncHttpTransport:
        """The HTTP transport of one service client (tests wrap it to inject faults): the
        store's own writes through ``LeanWriteTransport``, the rest through aiohttp."""
        return LeanWriteTransport(
            _KeepAliveTransport(
                use_env_settings=self._use_env_settings,
                connection_timeout=_CONNECT_TIMEOUT_SECONDS,
                read_timeout=_READ_TIMEOUT_SECONDS,
            ),
            connection_timeout=_CONNECT_TIMEOUT_SECONDS,
            read_timeout=_READ_TIMEOUT_SECONDS,
            direct=not self._use_env_settings,
        )

    def _count_request(self, _request: Any) -> None:
        self._operations += 1

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the tables, control queues and large-message container if missing."""

        async def create(call: Awaitable[Any]) -> None:
            try:
                await call
            except ResourceExistsError:
                pass

        await asyncio.gather(
            create(self._instances.create_table()),
            create(self._history.create_table()),
            create(self._container.create_container()),
            *(create(queue.create_queue()) for queue in self._control_queues),
        )

    async def close(self) -> None:
        """Close the three service clients and their connection pools (and the credential)."""
        await asyncio.gather(
            self._table_service.close(), self._queue_service.close(), self._blob_service.close()
        )
        if self._credential is not None:
            await self._credential.close()

    async def count_operations(self) -> int:
        """HTTP requests made to storage so far."""
        return self._operations

    # -- blobs ----------------------------------------------------------------------------------

    async def _upload(self, name: str, text: str) -> None:
        data = gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)
        await self._container.upload_blob(name, data, overwrite=True)

    async def _download(self, name: str) -> str:
        downloader = await self._container.download_blob(name)
        return gzip.decompress(await downloader.readall()).decode("utf-8")

    async def _delete_blob(self, name: str) -> None:
        try:
            await self._container.delete_blob(name)
        except ResourceNotFoundError:
            pass

    @staticmethod
    def _fitted_row(
        entity: dict[str, Any], blob_prefix: str, uploads: list[tuple[str, str]]
    ) -> TableRow:
        """``entity`` and its text, once the columns the table cannot hold are moved to blobs
        ``{blob_prefix}-{Column}.json.gz``; a ``{Column}BlobName`` column names each one.

        The text is made once (``fits_as_is`` judges the usual row from it), twice for a row
        that had values moved."""
        row = table_row(entity)
        if fits_as_is(row):
            return row
        large = too_large_columns(entity)
        for column in large:
            name = f"{blob_prefix}-{column}.json.gz"
            uploads.append((name, entity.pop(column)))
            entity[column + BLOB_SUFFIX] = name
        return table_row(entity) if large else row

    async def _fetch_large_values(
        self, entities: list[dict[str, Any]], *, instance_rows: bool = False
    ) -> None:
        """Replace each ``{Column}BlobName`` column by the blob's text under ``Column``.

        A purge deletes an instance's blobs before its row (``delete_instance``), so a purge
        cut short there leaves a finished instance's row naming blobs that are gone: with
        ``instance_rows``, such a value of a finished instance reads as absent (with a warning)
        and the row stays readable, listable and purgeable. Any other missing blob raises: an
        unfinished instance's blobs are never deleted, and its input read as null would run
        it on a value nobody sent.
        """
        refs = [
            (entity, column)
            for entity in entities
            for column, value in entity.items()
            if column.endswith(BLOB_SUFFIX)
            and isinstance(value, str)
            and value.startswith(entity["PartitionKey"] + "/")
        ]

        async def fetch(entity: dict[str, Any], column: str) -> str | None:
            try:
                return await self._download(entity[column])
            except ResourceNotFoundError:
                if not instance_rows or entity.get("RuntimeStatus") not in TERMINAL_STATUSES:
                    raise
                logger.warning(
                    "instance %s: the blob of its %s is gone (a purge cut short); read as absent",
                    unsanitize_key(entity["PartitionKey"]),
                    column.removesuffix(BLOB_SUFFIX),
                )
                return None

        texts = await _bounded(fetch(entity, column) for entity, column in refs)
        for (entity, column), text in zip(refs, texts, strict=True):
            del entity[column]
            if text is not None:
                entity[column.removesuffix(BLOB_SUFFIX)] = text

    # -- durable inbox --------------------------------------------------------------------------

    async def put_message(self, message: StoredMessage) -> None:
        """Send ``message`` to its instance's control queue (its body to a blob when large)."""
        queue = self._control_queues[
            control_queue_index(message.instance_id, len(self._control_queues))
        ]
        envelope: dict[str, Any] = {"msgId": message.msg_id, "instanceId": message.instance_id}
        # json.dumps escapes non-ASCII, so the text holds no character the queue's XML rejects.
        text = json.dumps({**envelope, "body": message.body}, separators=(",", ":"))
        blob_name = None
        if len(text) > _MAX_QUEUE_MESSAGE_CHARS:
            blob_name = (
                f"{sanitize_key(message.instance_id)}/message-{sanitize_key(message.msg_id)}"
                ".json.gz"
            )
            await self._upload(blob_name, json.dumps(message.body, separators=(",", ":")))
            text = json.dumps({**envelope, "bodyBlob": blob_name}, separators=(",", ":"))
        # time_to_live=-1: the service default (7 days) would silently drop a message the
        # engine has not checkpointed yet, e.g. a start request waiting through an outage.
        sent = await queue.send_message(text, time_to_live=-1)
        pop_receipt = sent.pop_receipt or ""
        self._pop_receipts[(queue.queue_name, sent.id)] = pop_receipt
        message.receipt = QueueReceipt(queue.queue_name, sent.id, pop_receipt, blob_name)

    async def read_messages(self) -> list[StoredMessage]:
        """Every message of every control queue, oldest ``msg_id`` first.

        Receiving is the only way to page past 32 messages, and it hides them; each one is
        made visible again right away, so a later read (a quick restart) sees it too. A reader
        killed while it paged leaves what it received hidden for up to
        ``_READ_VISIBILITY_SECONDS``. The queue's message count includes hidden messages (and
        is never lower than the real number), so when it exceeds what was received this read
        waits for them rather than return without them: it reads again until the counts
        agree, or until a read starts after the longest hiding has ended.
        """
        last_hidden_until = time.monotonic() + _READ_VISIBILITY_SECONDS
        warned = False
        while True:
            started = time.monotonic()
            per_queue = await asyncio.gather(*(self._read_queue(q) for q in self._control_queues))
            counts = await asyncio.gather(*(self._count(q) for q in self._control_queues))
            hidden = sum(
                max(0, count - received)
                for (_, received), count in zip(per_queue, counts, strict=True)
            )
            if not hidden or started >= last_hidden_until:
                break
            if not warned:  # once per read, not once per second of the wait
                logger.warning(
                    "%d queued messages are hidden by an earlier reader (a host killed while "
                    "it started?); reading again once they are visible (at most %d s)",
                    hidden,
                    _READ_VISIBILITY_SECONDS,
                )
                warned = True
            await asyncio.sleep(min(1.0, max(0.0, last_hidden_until - time.monotonic())))
        messages = [message for queue_messages, _ in per_queue for message in queue_messages]
        messages.sort(key=lambda message: message.msg_id)
        messages, copies = split_copies(messages)
        # A send resent after its answer was lost left a copy; the copies share one body blob,
        # which the message kept still needs.
        await _bounded(
            self._delete_message(replace(copy.receipt, blob_name=None))
            for copy in copies
            if isinstance(copy.receipt, QueueReceipt)
        )
        return messages

    async def _count(self, queue: QueueClient) -> int:
        properties = await queue.get_queue_properties()
        return int(properties.approximate_message_count or 0)

    async def _read_queue(self, queue: QueueClient) -> tuple[list[StoredMessage], int]:
        """The queue's messages we can read, and how many messages it handed out."""
        received: dict[str, QueueMessage] = {}
        async for item in queue.receive_messages(
            messages_per_page=32, visibility_timeout=_READ_VISIBILITY_SECONDS
        ):
            received[item.id] = item  # a message seen twice keeps its latest receipt
        results = await _bounded(self._reveal(queue, item) for item in received.values())
        return [message for message in results if message is not None], len(received)

    async def _reveal(self, queue: QueueClient, item: QueueMessage) -> StoredMessage | None:
        """Make a received message visible again and decode it (None if it is not ours)."""
        try:
            visible = await queue.update_message(item.id, item.pop_receipt, visibility_timeout=0)
        except ResourceNotFoundError:
            return None  # deleted since it was received
        pop_receipt = visible.pop_receipt or ""
        self._pop_receipts[(queue.queue_name, item.id)] = pop_receipt
        try:
            envelope = json.loads(item.content)
            blob_name = envelope.get("bodyBlob")
            body = (
                envelope["body"]
                if blob_name is None
                else json.loads(await self._download(blob_name))
            )
            receipt = QueueReceipt(queue.queue_name, item.id, pop_receipt, blob_name)
            return StoredMessage(envelope["msgId"], envelope["instanceId"], body, receipt)
        except (ValueError, KeyError, TypeError, AttributeError, ResourceNotFoundError):
            # Not ours (e.g. a real host used the same task hub) or damaged: leave it alone.
            logger.warning("skipping unreadable message %s in %s", item.id, queue.queue_name)
            return None

    async def delete_messages(self, messages: list[StoredMessage]) -> None:
        """Delete messages (and their body blobs); already deleted ones are ignored."""
        receipts = [m.receipt for m in messages if isinstance(m.receipt, QueueReceipt)]
        await _bounded(self._delete_message(receipt) for receipt in receipts)

    async def _delete_message(self, receipt: QueueReceipt) -> None:
        queue = self._queues_by_name.get(receipt.queue)
        if queue is None:
            return  # a receipt from another task hub: nothing of ours
        key = (receipt.queue, receipt.message_id)
        try:
            await queue.delete_message(
                receipt.message_id, self._pop_receipts.get(key, receipt.pop_receipt)
            )
        except ResourceNotFoundError:
            pass  # already deleted
        except HttpResponseError as error:
            if error.status_code != 400:
                raise
            # Another process re-read it, which changed its receipt: it stays, is read again
            # at the next start, and the instance's inbox watermark drops it then.
            logger.warning("message %s not deleted: %s", receipt.message_id, error.message)
            return
        finally:
            self._pop_receipts.pop(key, None)
        if receipt.blob_name is not None:
            await self._delete_blob(receipt.blob_name)

    # -- instances and histories ----------------------------------------------------------------

    def _instance_entity(self, row: InstanceRow, uploads: list[tuple[str, str]]) -> TableRow:
        entity = instance_to_entity(row, self.task_hub)
        return self._fitted_row(entity, f"{sanitize_key(row.instance_id)}/instance", uploads)

    async def write_row(self, row: InstanceRow) -> None:
        """Replace the instance row (its large values go to blobs first)."""
        async with self._writes.slot():
            await self._write_row(row)

    async def _write_row(self, row: InstanceRow) -> None:
        uploads: list[tuple[str, str]] = []
        instance = self._instance_entity(row, uploads)
        if uploads:
            await _bounded(self._upload(name, text) for name, text in uploads)
        await self._replace_instance(instance)

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Write the new history rows and the sentinel (last), then (``with_row``) the
        instance row."""
        async with self._writes.slot():
            await self._write_checkpoint(checkpoint)

    async def _write_checkpoint(self, checkpoint: Checkpoint) -> None:
        written = self._prepare_checkpoint(checkpoint)
        if len(written.batches) > 1 and checkpoint.persisted_count == 0:
            stored_rows_last = _stored_rows_with_the_sentinel(written, checkpoint.stored_rows)
            if stored_rows_last is not None:
                await self._commit_checkpoint(stored_rows_last)
                return
        opening = checkpoint.opening
        if len(written.batches) > 1 and opening is not None and opening.history:
            # A new execution's rows replace the stored one's in several transactions, and
            # the sentinel naming it commits last: a crash in between would leave the stored
            # execution's rows partly overwritten (read as torn: no history, an instance
            # running with nothing to do). Its opening first, in one transaction, then the
            # rest as an append to it.
            first = self._prepare_checkpoint(opening)
            if len(first.batches) == 1:
                await self._commit_checkpoint(first)
                rest = replace(checkpoint, persisted_count=len(opening.history), opening=None)
                written = self._prepare_checkpoint(rest)
        await self._commit_checkpoint(written)

    def _prepare_checkpoint(self, checkpoint: Checkpoint) -> _PreparedCheckpoint:
        """The blobs, history transactions and instance row one checkpoint writes."""
        row = checkpoint.row
        partition_key = sanitize_key(row.instance_id)
        # The execution id in history blob names keeps a committed older execution's row from
        # pointing at a blob that a half-written replacement has overwritten.
        blob_prefix = f"{partition_key}/history-{sanitize_key(row.execution_id)}"
        uploads: list[tuple[str, str]] = []
        entities: list[TableRow] = []
        # Rows known not to be stored are inserted, the rest replaced (write_transaction).
        absent_from = checkpoint.stored_rows
        inserted: set[str] = set()
        for ordinal in range(checkpoint.persisted_count, len(checkpoint.history)):
            row_key = history_row_key(ordinal)
            entity = event_to_entity(checkpoint.history[ordinal])
            entity.update(PartitionKey=partition_key, RowKey=row_key, ExecutionId=row.execution_id)
            entities.append(self._fitted_row(entity, f"{blob_prefix}-{row_key}", uploads))
            if absent_from is not None and ordinal >= absent_from:
                inserted.add(row_key)
        entities.append(
            table_row(
                {
                    "PartitionKey": partition_key,
                    "RowKey": SENTINEL_ROW_KEY,
                    "ExecutionId": row.execution_id,
                    "IsCheckpointComplete": True,
                    "CheckpointCompletedTimestamp": datetime.now(UTC),
                    "HistoryCount": len(checkpoint.history),
                    "InboxWatermark": checkpoint.inbox_watermark,
                }
            )
        )
        instance = self._instance_entity(row, uploads) if checkpoint.with_row else None
        rewrites = absent_from is None or checkpoint.persisted_count < absent_from
        return _PreparedCheckpoint(
            uploads, list(transactions(entities)), inserted, instance, rewrites
        )

    async def _commit_checkpoint(self, written: _PreparedCheckpoint) -> None:
        # Blobs first: a committed row must never name a blob that is not there yet.
        if written.uploads:
            await _bounded(self._upload(name, text) for name, text in written.uploads)
        batches, inserted = written.batches, written.inserted
        # The one holding the sentinel commits the checkpoint, so it goes last. Rows past the
        # stored sentinel's count are read by nobody until it lands, so the transactions
        # writing only those may run in parallel. A checkpoint that rewrites stored rows (a
        # rewind over more than 99 rows, or rows that may be stored) sends them one after the
        # other, in row order: a kill between two then leaves a prefix rewritten, which
        # recovery reads as a consistent state and repairs. Sent side by side, a later one
        # could land alone: a rewind's TaskFailed rewritten and not its TaskScheduled left a
        # call that the re-run counts as scheduled and nothing runs, the instance waiting for
        # ever.
        if written.rewrites:
            for batch in batches:
                await self._submit(batch, inserted)
        else:
            if len(batches) > 1:
                # Every one ends before the sentinel's does (a failed one included): one still
                # under way could land after a later write of the same rows.
                outcomes = await asyncio.gather(
                    *(self._submit(batch, inserted) for batch in batches[:-1]),
                    return_exceptions=True,
                )
                for outcome in outcomes:
                    if isinstance(outcome, BaseException):
                        raise outcome
            await self._submit(batches[-1], inserted)
        if written.instance is not None:
            await self._replace_instance(written.instance)

    async def _replace_instance(self, row: TableRow) -> None:
        """Insert or replace one Instances row: the request ``upsert_entity(mode=REPLACE)``
        sends, with the body built here (the JSON the history transactions carry,
        ``azure_layout.entity_body``) instead of by the SDK's generic model serializer, and
        sent through the write pipeline (``_write_pipeline``)."""
        table = self._instances
        entity = row.entity
        response, _, _ = await _send(
            table,
            self._instance_writes,
            "PUT",
            entity_address(table.url, table.table_name, entity["PartitionKey"], entity["RowKey"]),
            {
                "x-ms-version": table.api_version,
                "DataServiceVersion": "3.0",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            row.body.encode("ascii"),
        )
        if response.status_code not in (200, 201, 204):
            raise HttpResponseError(
                message=f"instance row {entity['PartitionKey'][:80]} not written: "
                f"HTTP {response.status_code} {response.text()[:500]}",
                response=response,
            )

    async def _submit(self, batch: list[TableRow], inserted: set[str]) -> None:
        """Commit one entity-group transaction writing ``batch``, inserting the rows whose
        RowKey is in ``inserted`` (body built by azure_layout)."""
        table = self._history
        partition = batch[0].entity["PartitionKey"]
        content_type, body = write_transaction(table.url, table.table_name, batch, inserted)
        try:
            await self._commit(content_type, body, len(batch), partition)
        except _RowExists:
            # A row counted as not stored is there: this checkpoint sent again after the
            # answer to its first sending was lost (RetryingStore resends it whole). Replace
            # every row, as DTFx always does.
            logger.info("history of %s already written in part: rows replaced", partition[:80])
            content_type, body = write_transaction(table.url, table.table_name, batch)
            await self._commit(content_type, body, len(batch), partition)

    async def _commit(
        self, content_type: str, body: bytes, operations: int, partition: str
    ) -> None:
        """Send one entity-group transaction on the History table; raise unless every
        operation in it succeeded."""
        table = self._history
        # The table client's pipeline (auth, retries, request counting) as the SDK's
        # submit_transaction uses it, less what _WRITE_PATH_SKIPS names; the multipart answer
        # is read, not decoded. A lost connection is not resent by the SDK (a POST);
        # RetryingStore resends the checkpoint.
        response, answer, _ = await _send(
            table,
            self._history_writes,
            "POST",
            f"{table.url.rstrip('/')}/$batch",
            {
                "x-ms-version": table.api_version,
                "DataServiceVersion": "3.0",
                "MaxDataServiceVersion": "3.0;NetFx",
                "Content-Type": content_type,
                "Accept": "application/json",
            },
            body,
        )
        error = None if response.status_code == 202 else f"HTTP {response.status_code}"
        # What ``response.text()`` decodes (the answer names no charset), without the SDK
        # looking for one in its Content-Type on every checkpoint.
        text = answer.decode("utf-8-sig", "replace")
        error = error or transaction_error(text, operations)
        if error is not None:
            failure = _RowExists if "EntityAlreadyExists" in text else HttpResponseError
            raise failure(
                message=f"history transaction for {partition[:80]} failed: {error}",
                response=response,
            )

    async def read_instance(self, instance_id: str) -> InstanceRow | None:
        """The instance row (large values fetched from blobs), or None."""
        try:
            entity = await self._instances.get_entity(sanitize_key(instance_id), "")
        except ResourceNotFoundError:
            return None
        return (await self._instance_rows([entity]))[0]

    async def _instance_rows(self, entities: list[TableEntity]) -> list[InstanceRow]:
        plain = [dict(entity) for entity in entities]
        await self._fetch_large_values(plain, instance_rows=True)
        return [entity_to_instance(entity) for entity in plain]

    async def read_history(self, instance_id: str) -> StoredHistory | None:
        """The current execution's events, or None before the first complete checkpoint.

        Rows at or past the sentinel's ``HistoryCount`` (a half-written checkpoint, or an
        older, longer execution) and rows of another execution are never returned.
        """
        partition_key = sanitize_key(instance_id)
        rows = [
            dict(entity)
            async for entity in self._history.query_entities(
                f"PartitionKey eq {odata_string(partition_key)}"
            )
        ]
        # The service returns rows in RowKey order: the events, then the sentinel.
        sentinel = rows.pop() if rows and rows[-1]["RowKey"] == SENTINEL_ROW_KEY else None
        if sentinel is None:
            return None
        execution_id = sentinel["ExecutionId"]
        count = from_table_value(sentinel.get("HistoryCount", 0))
        # Whether the rows are exactly the ordinals below len(rows): what a purge may then
        # delete by key (a crash mid-checkpoint can leave a gap; rows past the count stay).
        dense = all(row["RowKey"] == history_row_key(n) for n, row in enumerate(rows))
        events: list[dict[str, Any]] = []
        for row in rows[:count]:
            if row["RowKey"] != history_row_key(len(events)) or row["ExecutionId"] != execution_id:
                # Only a crash while a long execution was being replaced leaves this.
                logger.warning(
                    "history of %s is torn at row %s: returning %d of %d events",
                    instance_id,
                    row["RowKey"],
                    len(events),
                    count,
                )
                break
            events.append(row)
        await self._fetch_large_values(events)
        return StoredHistory(
            execution_id=execution_id,
            events=[entity_to_event(row) for row in events],
            inbox_watermark=sentinel.get("InboxWatermark", ""),
            rows=len(rows) if dense else None,
        )

    async def query_instances(
        self, query: InstanceQuery, top: int, continuation: str | None
    ) -> tuple[list[InstanceRow], str | None]:
        """One page of matching instances (filtered by the table service) and the next token."""
        condition = instance_filter(query)
        token = decode_token(continuation)
        while True:
            paged = (
                self._instances.query_entities(condition, results_per_page=top)
                if condition
                else self._instances.list_entities(results_per_page=top)
            )
            pages = cast(AsyncPageIterator[Any], paged.by_page(continuation_token=token))
            entities: list[TableEntity] = []
            async for page in pages:
                entities = [entity async for entity in page]
                break
            token = pages.continuation_token
            # The service may answer a filtered query with an empty page and a token.
            if entities or not token:
                break
        return await self._instance_rows(entities), encode_token(token)

    async def delete_instance(self, instance_id: str, history_rows: int | None = None) -> bool:
        """Delete the history rows, the blobs, then the instance row (so a crash can retry).

        Four requests, the first two at once: list the history rows' keys and the blobs,
        delete the rows (one transaction per 100), delete the blobs, delete the instance
        row. No read of the instance row first: its delete says whether it was there.

        With ``history_rows`` the rows are deleted by key, without listing them: on Azurite
        that listing scans the whole History table, and under load it was most of a purge's
        time. A transaction that fails (a row already gone: a purge resent after its answer
        was lost) makes the purge list what is left and delete that.
        """
        partition_key = sanitize_key(instance_id)

        async def history_keys() -> list[tuple[str, str]]:
            return [
                (partition_key, entity["RowKey"])
                async for entity in self._history.query_entities(
                    f"PartitionKey eq {odata_string(partition_key)}", select=["RowKey"]
                )
            ]

        async def blob_names() -> list[str]:
            return [
                blob.name
                async for blob in self._container.list_blobs(name_starts_with=f"{partition_key}/")
            ]

        if history_rows is None:
            keys, blobs = await asyncio.gather(history_keys(), blob_names())
            await self._delete_history(partition_key, keys)
        else:
            keys = [(partition_key, history_row_key(ordinal)) for ordinal in range(history_rows)]
            keys.append((partition_key, SENTINEL_ROW_KEY))
            listing = asyncio.ensure_future(blob_names())
            try:
                try:
                    await self._delete_history(partition_key, keys)
                except HttpResponseError as error:
                    logger.info("purge of %s lists its history: %s", instance_id[:80], error)
                    keys = await history_keys()
                    await self._delete_history(partition_key, keys)
                blobs = await listing
            finally:
                if not listing.done():
                    listing.cancel()
                    await asyncio.gather(listing, return_exceptions=True)
        await _bounded(self._delete_blob(name) for name in blobs)
        return await self._delete_instance_row(partition_key) or bool(keys)

    async def _delete_history(self, partition_key: str, keys: list[tuple[str, str]]) -> None:
        """Delete the history rows ``keys`` names, one transaction per 100."""
        table = self._history
        batches = [
            keys[start : start + MAX_TRANSACTION_OPERATIONS]
            for start in range(0, len(keys), MAX_TRANSACTION_OPERATIONS)
        ]
        # The sentinel's transaction first (RowKey order puts it last): a purge cut short then
        # leaves a history without a sentinel, which reads as none (read_history), rather than
        # a sentinel counting rows that are gone; the row, still there, says the instance
        # finished, and a re-run deletes the rest. (Rows without a sentinel are also what a
        # first checkpoint cut short leaves: every reader already takes them as no history.)
        batches.sort(key=lambda batch: batch[-1][1] != SENTINEL_ROW_KEY)
        for batch in batches:
            content_type, body = delete_transaction(table.url, table.table_name, batch)
            await self._commit(content_type, body, len(batch), partition_key)

    async def _delete_instance_row(self, partition_key: str) -> bool:
        """Delete one Instances row whatever its ETag; whether it was there. (The SDK's
        ``delete_entity`` answers a missing row as a success, so the request is sent here.)

        The SDK resends a DELETE whose answer was lost; the row the first attempt deleted is
        then missing for the second, which says 404: that counts as deleted here, or a purge
        would say it removed nothing (and the retention job would skip what follows one)."""
        table = self._instances
        response, answer, attempts = await _send(
            table,
            self._instance_writes,
            "DELETE",
            entity_address(table.url, table.table_name, partition_key, ""),
            {
                "x-ms-version": table.api_version,
                "DataServiceVersion": "3.0",
                "Accept": "application/json;odata=nometadata",
                "If-Match": "*",
            },
            b"",
        )
        if response.status_code == 404:
            return _may_have_been_applied(attempts)
        if response.status_code not in (200, 204):
            raise HttpResponseError(
                message=f"instance row {partition_key[:80]} not deleted: "
                f"HTTP {response.status_code} {answer[:500].decode('utf-8', 'replace')}",
                response=response,
            )
        return True
