"""A lean HTTP/1.1 path for the store's own writes, under azure-core's pipeline.

Why this exists beside aiohttp: every checkpoint is one or two requests (a HelloSequence5
makes eight), and on this host a request sent through aiohttp costs about 300 microseconds of
CPU against Azurite at 100 in flight, whatever goes above it (the SDK's policies, signing);
the same request written here on an asyncio protocol, its answer parsed by ``httptools``
(llhttp, Node's parser, as uvicorn uses it), costs about 120. That difference was most of the
host's CPU beyond the storage floor once every activity waited for its episode's write
(docs/benchmarks.md, "Seventh pass").

It is deliberately narrow, and hands everything else to the transport it wraps (aiohttp):
  - only requests the store builds itself (``StoreRequest``, with a bytes body: the
    checkpoint transactions and instance rows); the SDKs' own requests (reads, queues, blobs)
    keep aiohttp;
  - only writes (PUT, POST, DELETE, MERGE, PATCH) to ``http://`` endpoints (Azurite, an
    emulator), and none while the environment may name a proxy; TLS, proxies, client
    certificates and any per-request option it does not know go to aiohttp;
  - one request per connection at a time (no pipelining), connections kept alive and reused
    while idle for less than ``keepalive`` seconds (Azurite closes idle sockets after 5 s:
    a request sent as the server closes its socket fails, so ours close first, as
    ``azure._KeepAliveTransport`` does for aiohttp); a connection is reused only after a
    whole answer to the request it carried, and closed on anything else (bytes nobody asked
    for, a failure, a cancel, a timeout).

Failures are azure-core's, so the retry policy and the store's "may have been applied" rule
read them: a connection that could not be made is a ``ServiceRequestError`` (nothing was
sent); one lost, timed out or answered in a way not understood after the request was written
is a ``ServiceResponseError`` (it may have been applied). Two differences from aiohttp, both on
the side of "may have been applied": an answer framed only by closing the connection (no
length, not chunked; Azurite frames its answers) fails, and a kept-alive connection the server
dropped fails the request instead of aiohttp's silent second sending of a PUT or DELETE (or its
``ServiceRequestError`` for a POST that was sent).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import MutableMapping
from typing import Any

import httptools
import yarl
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import AsyncHttpResponse, AsyncHttpTransport, HttpRequest
from azure.core.utils import CaseInsensitiveDict

__all__ = ["LeanWriteTransport", "StoreRequest"]

# The methods of writes (HEAD, whose answer has a length and no body, is not one).
_METHODS = frozenset({"PUT", "POST", "DELETE", "MERGE", "PATCH"})
# Options the pipeline may pass to a transport that change nothing here (the store's write
# pipelines pass none); any other option given a value sends the request through aiohttp.
_IGNORED_OPTIONS = frozenset({"connection_timeout", "read_timeout"})


class StoreRequest(HttpRequest):
    """A request the store built itself (a write whose answer it reads whole): the only kind
    ``LeanWriteTransport`` sends. The SDKs' requests never are one."""


class _Answer(AsyncHttpResponse):
    """A whole response, read before it is handed back (what ``load_body`` leaves)."""

    def __init__(
        self, request: HttpRequest, status: int, headers: CaseInsensitiveDict, body: bytes
    ) -> None:
        super().__init__(request, None)
        self.status_code = status
        self.headers = headers
        self.reason = ""
        self.content_type = headers.get("Content-Type")
        self._body = body

    def body(self) -> bytes:
        return self._body

    async def load_body(self) -> None:
        """Already loaded (azure-core calls this on responses it did not read)."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a request at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[tuple[int, CaseInsensitiveDict, bytes]] | None = None
        self.headers: CaseInsensitiveDict = CaseInsensitiveDict()
        self.chunks: list[bytes] = []
        self.closed = False
        self.idle_since = 0.0

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            self._fail(ServiceResponseError(f"unexpected HTTP response: {error}", error=error))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ServiceResponseError("connection lost before the whole response", error=exc))

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        if self.answer is None:
            # Bytes nobody asked for (on an idle connection, or after an answer): whatever
            # they are, the next answer read here could be theirs.
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1")] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim answer (100 Continue, 103): the final one follows, as aiohttp reads it.
            self.headers, self.chunks = CaseInsensitiveDict(), []
            return
        if status == 101 or self.answer is None:
            self._fail(ServiceResponseError(f"unexpected HTTP {status} answer"))
            return
        answer, self.answer = self.answer, None
        keep = self.parser.should_keep_alive()
        headers, self.headers = self.headers, CaseInsensitiveDict()
        body = b"".join(self.chunks)
        self.chunks = []
        if not keep:
            self.close()
        if not answer.done():
            answer.set_result((status, headers, body))

    # -- use

    def _fail(self, error: Exception) -> None:
        answer, self.answer = self.answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)
        self.close()

    def time_out(self) -> None:
        """No whole answer in time: the request fails and the connection is dropped."""
        self._fail(ServiceResponseTimeoutError("no whole response in time"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, data: bytes) -> asyncio.Future[tuple[int, CaseInsensitiveDict, bytes]]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.answer


class LeanWriteTransport(AsyncHttpTransport):
    """An azure-core async transport that sends the store's own ``http://`` writes itself and
    everything else through ``fallback``.

    Parameters
    ----------
    fallback
        The transport for what is not handled here (and whose lifetime this one shares).
    connection_timeout, read_timeout
        Seconds to connect, and to wait for a whole response once the request is written.
    keepalive
        Seconds an idle connection is reused for.
    limit
        Connections open at most (more requests wait for one).
    direct
        False when the environment may name a proxy (``HTTP_PROXY`` and the like, which
        aiohttp honours): then every request goes through ``fallback``.
    """

    def __init__(
        self,
        fallback: AsyncHttpTransport,
        *,
        connection_timeout: float,
        read_timeout: float,
        keepalive: float = 2.0,
        limit: int = 100,
        direct: bool = True,
    ) -> None:
        self._fallback = fallback
        self._direct = direct
        self._connect_timeout = connection_timeout
        self._read_timeout = read_timeout
        self._keepalive = keepalive
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._slots = asyncio.Semaphore(limit)
        self._closed = False

    async def __aenter__(self) -> LeanWriteTransport:
        await self._fallback.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()

    async def open(self) -> None:
        await self._fallback.open()

    async def close(self) -> None:
        self._closed = True  # a request still under way closes its connection when it ends
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        await self._fallback.close()

    async def send(self, request: Any, **config: Any) -> Any:
        target = self._handled(request, config)
        if target is None:
            return await self._fallback.send(request, **config)
        host, port, data = target
        async with self._slots:
            connection = await self._connection(host, port)
            answer = connection.send(data)
            timer = asyncio.get_running_loop().call_later(self._read_timeout, connection.time_out)
            try:
                status, headers, body = await answer
            except BaseException:
                connection.close()  # its state is not known: never reused
                raise
            finally:
                timer.cancel()
            if self._closed:
                connection.close()
            elif not connection.closed:
                connection.idle_since = time.monotonic()
                self._idle.setdefault((host, port), []).append(connection)
        return _Answer(request, status, headers, body)

    def _handled(
        self, request: Any, config: MutableMapping[str, Any]
    ) -> tuple[str, int, bytes] | None:
        """Where to send ``request`` and its bytes, if it is sent here; None if not."""
        if (
            type(request) is not StoreRequest
            or not request.url.startswith("http://")
            or request.method not in _METHODS
            or not self._direct
        ):
            return None
        if any(value for key, value in config.items() if key not in _IGNORED_OPTIONS):
            return None  # proxies, certificates, anything this path does not do
        body = request.data
        if body is None:
            body = b""
        if not isinstance(body, bytes) or request.files:
            return None
        # The address as aiohttp sends it: yarl re-quotes it (%40 goes as @, %27 as '), and
        # the server checks the shared-key signature against what it receives.
        try:
            url = yarl.URL(request.url)
        except ValueError:
            return None  # aiohttp's InvalidURL, which azure-core maps
        host = url.raw_host
        if host is None or url.port is None:
            return None
        lines = [f"{request.method} {url.raw_path_qs} HTTP/1.1"]
        given = set()
        for name, value in request.headers.items():
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                return None  # aiohttp refuses it; so would a server
            given.add(name.lower())
            lines.append(f"{name}: {value}")
        if "host" not in given:
            lines.append(f"Host: {url.raw_authority}")
        if "content-length" not in given:
            lines.append(f"Content-Length: {len(body)}")
        try:
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            return None  # aiohttp sends such a value as UTF-8
        return host, url.port, head + body

    async def _connection(self, host: str, port: int) -> _Connection:
        """An idle connection to ``host:port`` used less than ``keepalive`` ago, or a new one."""
        idle = self._idle.get((host, port))
        if idle:
            horizon = time.monotonic() - self._keepalive
            while idle:
                connection = idle.pop()
                if not connection.closed and connection.idle_since > horizon:
                    return connection
                connection.close()
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(_Connection, host, port), self._connect_timeout
            )
        except TimeoutError as error:
            raise ServiceRequestTimeoutError(f"connecting to {host}:{port} timed out") from error
        except OSError as error:
            raise ServiceRequestError(f"cannot connect to {host}:{port}: {error}") from error
        return protocol
