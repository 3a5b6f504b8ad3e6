"""Storage faults on purpose: seeded failures and delays under the real code paths.

Two ways in, each below the code it tests:

* :class:`FaultyTransport` is an azure-core async transport around the real one. Installed
  under the SDK clients of an ``AzureStore`` (:func:`faulty_azure_store`), it makes requests
  fail or wait the way a busy service or a bad network does, so the SDKs' own retry policies
  and everything above them run exactly as they would against a failing account.
* :class:`FaultyStore` wraps any ``Store`` (the memory store, in engine tests) and fails its
  calls with the same exceptions the SDKs raise.

A fault is a pure function of the seed, what the request addresses (its key) and how many
times that key was seen before, so a run with the same seed and the same requests meets the
same faults however unrelated requests interleave. :meth:`FaultInjector.take_down` makes every
request fail as a refused connection until :meth:`FaultInjector.bring_up`: an outage.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import HttpRequest as RestHttpRequest

from devhost.store.azure_layout import key_literal
from devhost.store.base import (
    Checkpoint,
    InstanceQuery,
    InstanceRow,
    Store,
    StoredHistory,
    StoredMessage,
)

__all__ = [
    "FAULT_KINDS",
    "FaultInjector",
    "FaultPlan",
    "FaultyStore",
    "FaultyTransport",
    "faulty_azure_store",
]

# What a failed request looks like to the caller, and whether the service applied it:
#   busy     503 ServerBusy, not applied          error    500 InternalError, not applied
#   reset    connection reset before sending      lost     applied, then the connection drops
#   timeout  no answer within the timeout, not applied
FAULT_KINDS = ("busy", "error", "reset", "lost", "timeout")
_STATUS = {"busy": (503, "ServerBusy"), "error": (500, "InternalError")}

_T = TypeVar("_T")


@dataclass(frozen=True)
class FaultPlan:
    """How often requests fail or are slow.

    Parameters
    ----------
    seed
        Chooses which requests fail; the same seed and requests give the same faults.
    rate
        Probability that a request fails, with a kind drawn evenly from ``kinds``.
    kinds
        The failure kinds to draw from (see ``FAULT_KINDS``).
    slow_rate
        Probability that a request (that does not fail) is delayed by ``slow_seconds``.
    slow_seconds, timeout_seconds
        How long a slow request waits before it is sent, and a timed-out one before it fails.
    """

    seed: int = 0
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    slow_rate: float = 0.0
    slow_seconds: float = 0.2
    timeout_seconds: float = 0.5

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be among {FAULT_KINDS}, not {sorted(unknown)}")
        if not 0 <= self.rate + self.slow_rate <= 1:
            raise ValueError("rate + slow_rate must lie between 0 and 1")


@dataclass(frozen=True)
class Fault:
    """One injected fault: its kind, the request's key and the key's occurrence number."""

    kind: str
    key: str
    occurrence: int


class FaultInjector:
    """Decides, for each request, whether and how it fails; records what it injected.

    Parameters
    ----------
    plan
        The rates and the seed.

    Attributes
    ----------
    injected
        Every fault injected so far, in order (slow requests and refused ones included).
    """

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.injected: list[Fault] = []
        self._seen: Counter[str] = Counter()
        self._forced: dict[str, list[str]] = {}
        self._down = False

    def force(self, key: str, *kinds: str) -> None:
        """Make the next requests addressing ``key`` meet ``kinds``, in order (a test's
        script; the plan decides again afterwards)."""
        self._forced.setdefault(key, []).extend(kinds)

    def take_down(self) -> None:
        """Refuse every request from now on (an outage), until :meth:`bring_up`."""
        self._down = True

    def bring_up(self) -> None:
        """End the outage; requests follow the plan again."""
        self._down = False

    @property
    def is_down(self) -> bool:
        """Whether an outage is in progress."""
        return self._down

    def counts(self) -> Counter[str]:
        """How many faults of each kind were injected."""
        return Counter(fault.kind for fault in self.injected)

    def requests(self) -> Counter[str]:
        """How many requests addressed each key so far, faulty or not."""
        return Counter(self._seen)

    def decide(self, key: str) -> str | None:
        """The fault for the next request addressing ``key`` (``"slow"``, a failure kind,
        ``"refused"`` during an outage), or None."""
        occurrence = self._seen[key]
        self._seen[key] += 1
        kind = self._draw(key, occurrence)
        if kind is not None:
            self.injected.append(Fault(kind, key, occurrence))
        return kind

    def _draw(self, key: str, occurrence: int) -> str | None:
        if self._down:
            return "refused"
        if self._forced.get(key):
            return self._forced[key].pop(0)
        plan = self.plan
        digest = hashlib.blake2b(f"{plan.seed}\0{key}\0{occurrence}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        pick = int.from_bytes(digest[8:16], "big") / 2**64
        if draw < plan.rate:
            return plan.kinds[int(pick * len(plan.kinds))]
        if draw < plan.rate + plan.slow_rate:
            return "slow"
        return None

    async def run(self, key: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``call`` under the fault drawn for ``key`` (the memory-store path).

        Failures raise what the Azure SDKs raise for them: ``HttpResponseError`` with the
        status for ``busy`` and ``error``, ``ServiceRequestError`` for ``reset`` and
        ``refused``, ``ServiceResponseError`` for ``lost`` (after ``call`` ran) and
        ``ServiceResponseTimeoutError`` for ``timeout``.
        """
        kind = self.decide(key)
        if kind == "slow":
            await asyncio.sleep(self.plan.slow_seconds)
        elif kind in _STATUS:
            status, code = _STATUS[kind]
            error = HttpResponseError(message=f"{code} (injected) for {key}")
            error.status_code = status
            error.reason = code
            raise error
        elif kind in ("reset", "refused"):
            raise ServiceRequestError(f"connection {kind} (injected) for {key}")
        elif kind == "timeout":
            await asyncio.sleep(self.plan.timeout_seconds)
            raise ServiceResponseTimeoutError(f"timed out (injected) for {key}")
        result = await call()
        if kind == "lost":
            raise ServiceResponseError(f"connection lost after sending (injected) for {key}")
        return result


# -- the azure-core transport --------------------------------------------------------------------

# The two POSTs whose subject is in the body, not the path: a table transaction (its
# partition: in an address, else in an inserted row) and a queue message (its instance).
_ADDRESSED = re.compile(rb"PartitionKey='([^']{1,200})'")
_INSERTED = re.compile(rb'"PartitionKey":("(?:[^"\\]|\\.){1,200}")')
_MESSAGE = re.compile(rb"instanceId(?:\"|&quot;):(?:\"|&quot;)([^\"&]{1,200})")


def request_key(request: Any) -> str:
    """What a request addresses: method and path, plus the subject of a transaction or
    queue message (the query string holds only volatile values: timeouts, receipts)."""
    path = request.url.split("?", 1)[0].split("/", 3)[-1]
    key = f"{request.method} /{path}"
    body = _request_body(request)
    if body and request.method == "POST":
        key += _body_subject(body)
    return key


def _body_subject(body: bytes) -> str:
    """`` <partition>`` of a table transaction, as its addresses write it (an inserted row's
    key is in its JSON body: written the same way, so a partition has one key), or ``
    <instance>`` of a queue message; else nothing."""
    if (match := _ADDRESSED.search(body)) is not None:
        return " " + match.group(1).decode("utf-8", "replace")
    if (match := _INSERTED.search(body)) is not None:
        return " " + key_literal(json.loads(match.group(1)))
    if (match := _MESSAGE.search(body)) is not None:
        return " " + match.group(1).decode("utf-8", "replace")
    return ""


def _request_body(request: Any) -> bytes:
    content = request.content if isinstance(request, RestHttpRequest) else request.body
    if isinstance(content, str):
        return content.encode("utf-8")
    return content if isinstance(content, bytes) else b""


class _BytesSocket:
    """What ``http.client.HTTPResponse`` reads a response from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, *_args: Any) -> io.BytesIO:
        return io.BytesIO(self._data)


def _status_response(request: Any, status: int, code: str) -> Any:
    """A service error response with the body the service sends (JSON from tables, XML from
    queues and blobs), typed for the request kind the pipeline sent."""
    text = f"{code} (injected fault)"
    if "json" in request.headers.get("Accept", ""):
        body = json.dumps({"odata.error": {"code": code, "message": {"value": text}}})
        content_type = "application/json;odata=minimalmetadata"
    else:
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{code}</Code><Message>{text}</Message></Error>"
        )
        content_type = "application/xml"
    raw = (
        f"HTTP/1.1 {status} {code}\r\nx-ms-error-code: {code}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode("ascii")
    message = http.client.HTTPResponse(_BytesSocket(raw), method=request.method)  # type: ignore[arg-type]
    message.begin()
    # azure-core builds its multipart parts the same way (an http.client response over bytes);
    # these two classes are the async responses it wraps them in, one per request type.
    if isinstance(request, RestHttpRequest):
        from azure.core.rest._http_response_impl_async import (
            RestAsyncHttpClientTransportResponse,
        )

        return RestAsyncHttpClientTransportResponse(request=request, internal_response=message)
    from azure.core.pipeline.transport._base_async import AsyncHttpClientTransportResponse

    return AsyncHttpClientTransportResponse(request, message)


class FaultyTransport(AsyncHttpTransport):
    """An azure-core async transport that fails or delays requests before the real one.

    Parameters
    ----------
    inner
        The real transport (it does the requests that are sent).
    injector
        Decides each request's fault.
    """

    def __init__(self, inner: AsyncHttpTransport, injector: FaultInjector) -> None:
        self.inner = inner
        self.injector = injector

    async def __aenter__(self) -> FaultyTransport:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.inner.__aexit__(*args)

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def sleep(self, duration: float) -> None:
        await self.inner.sleep(duration)

    async def send(self, request: Any, **kwargs: Any) -> Any:
        """Send ``request`` through the inner transport, unless its fault says otherwise."""
        key = request_key(request)
        kind = self.injector.decide(key)
        if kind in _STATUS:
            response = _status_response(request, *_STATUS[kind])
            if not kwargs.get("stream", False):
                # As the real transport does: the pipeline's policies read the body unawaited
                # (the older response type reads it from its http.client response itself).
                if isinstance(request, RestHttpRequest):
                    await response.read()
                else:
                    response.body()
            return response
        if kind in ("reset", "refused"):
            raise ServiceRequestError(f"connection {kind} (injected) for {key}")
        if kind == "timeout":
            await asyncio.sleep(self.injector.plan.timeout_seconds)
            raise ServiceResponseTimeoutError(f"timed out (injected) for {key}")
        if kind == "slow":
            await asyncio.sleep(self.injector.plan.slow_seconds)
        response = await self.inner.send(request, **kwargs)
        if kind == "lost":
            raise ServiceResponseError(f"connection lost after sending (injected) for {key}")
        return response


def faulty_azure_store(
    connection_string: str, task_hub: str, injector: FaultInjector, **options: Any
) -> Store:
    """An ``AzureStore`` whose three SDK clients send through a :class:`FaultyTransport`."""
    from devhost.store.azure import AzureStore

    class _FaultyAzureStore(AzureStore):
        def _transport(self) -> AsyncHttpTransport:
            return FaultyTransport(super()._transport(), injector)

    return _FaultyAzureStore(connection_string, task_hub, **options)


# -- the store wrapper ---------------------------------------------------------------------------


class FaultyStore(Store):
    """A ``Store`` whose calls fail or wait as the injector decides, then reach ``inner``.

    Keys are the call's name and the instance it is about, so each instance meets the same
    faults in every run with the same seed.
    """

    def __init__(self, inner: Store, injector: FaultInjector) -> None:
        self.inner = inner
        self.injector = injector
        self.task_hub = inner.task_hub

    async def open(self) -> None:
        await self.injector.run("open", self.inner.open)

    async def close(self) -> None:
        await self.inner.close()

    async def count_operations(self) -> int:
        return await self.inner.count_operations()

    async def put_message(self, message: StoredMessage) -> None:
        await self.injector.run(
            f"put_message {message.instance_id}", lambda: self.inner.put_message(message)
        )

    async def read_messages(self) -> list[StoredMessage]:
        return await self.injector.run("read_messages", self.inner.read_messages)

    async def delete_messages(self, messages: list[StoredMessage]) -> None:
        subject = messages[0].instance_id if messages else ""
        await self.injector.run(
            f"delete_messages {subject}", lambda: self.inner.delete_messages(messages)
        )

    async def write_row(self, row: InstanceRow) -> None:
        await self.injector.run(f"write_row {row.instance_id}", lambda: self.inner.write_row(row))

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self.injector.run(
            f"write_checkpoint {checkpoint.row.instance_id}",
            lambda: self.inner.write_checkpoint(checkpoint),
        )

    async def read_instance(self, instance_id: str) -> InstanceRow | None:
        return await self.injector.run(
            f"read_instance {instance_id}", lambda: self.inner.read_instance(instance_id)
        )

    async def read_history(self, instance_id: str) -> StoredHistory | None:
        return await self.injector.run(
            f"read_history {instance_id}", lambda: self.inner.read_history(instance_id)
        )

    async def query_instances(
        self, query: InstanceQuery, top: int, continuation: str | None
    ) -> tuple[list[InstanceRow], str | None]:
        return await self.injector.run(
            f"query_instances {continuation or ''}",
            lambda: self.inner.query_instances(query, top, continuation),
        )

    async def delete_instance(self, instance_id: str, history_rows: int | None = None) -> bool:
        return await self.injector.run(
            f"delete_instance {instance_id}",
            lambda: self.inner.delete_instance(instance_id, history_rows),
        )
