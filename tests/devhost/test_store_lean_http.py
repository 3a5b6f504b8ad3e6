"""The lean transport of the store's own writes (devhost/store/lean_http.py), against a local
server that answers as a test needs: what it sends, what it reads back, how it fails (the
store's "may have been applied" rule reads the failure's type), and what it leaves to aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import AsyncHttpTransport, HttpRequest

from devhost.store.lean_http import LeanWriteTransport, StoreRequest

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _Server:
    """A local TCP server running ``handler`` for each connection; counts connections and
    keeps every request head it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.port = 0

    async def read_request(self, reader: asyncio.StreamReader) -> bool:
        """Read one request; False at the end of the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        self.heads.append(head)
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        self.bodies.append(await reader.readexactly(length))
        return True

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def _serving(make: Callable[[_Server], Handler]) -> AsyncIterator[_Server]:
    server = _Server(lambda r, w: asyncio.sleep(0))
    server.handler = make(server)
    listener = await asyncio.start_server(server._connected, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def _answering(answer: bytes) -> Callable[[_Server], Handler]:
    """A server answering every request of a connection with ``answer``."""

    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await server.read_request(reader):
                writer.write(answer)
                await writer.drain()

        return handle

    return make


_NO_CONTENT = b'HTTP/1.1 204 No Content\r\nETag: W/"1"\r\nContent-Length: 0\r\n\r\n'


class _Fallback(AsyncHttpTransport):
    """Stands for aiohttp: records what it is given."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.closed = False

    async def __aenter__(self) -> _Fallback:
        return self

    async def __aexit__(self, *args: Any) -> None:
        pass

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True

    async def send(self, request: Any, **config: Any) -> Any:
        self.sent.append((request, config))
        return "fallback"


def _transport(**options: Any) -> tuple[LeanWriteTransport, _Fallback]:
    fallback = _Fallback()
    settings: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 5, **options}
    return LeanWriteTransport(fallback, **settings), fallback


def _put(
    port: int, body: bytes = b'{"a":1}', path: str = "/acct/T(PartitionKey='%40k%20x',RowKey='')"
) -> StoreRequest:
    request = StoreRequest(
        "PUT", f"http://127.0.0.1:{port}{path}", headers={"x-ms-version": "2019-02-02"}
    )
    request.set_bytes_body(body)
    return request


async def test_writes_share_one_kept_alive_connection_and_read_their_answers() -> None:
    async with _serving(_answering(_NO_CONTENT)) as server:
        lean, fallback = _transport()
        answers = [await lean.send(_put(server.port, f'{{"n":{n}}}'.encode())) for n in range(3)]
        await lean.close()

    assert server.connections == 1
    assert [a.status_code for a in answers] == [204, 204, 204]
    assert answers[0].headers["etag"] == 'W/"1"' and answers[0].body() == b""
    first = server.heads[0].decode("latin-1")
    # The address as aiohttp sends it (the shared-key signature is checked against it).
    assert first.startswith("PUT /acct/T(PartitionKey='@k%20x',RowKey='') HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in first and "x-ms-version: 2019-02-02" in first
    assert server.bodies == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert fallback.sent == [] and fallback.closed


async def test_a_chunked_answer_is_read_whole() -> None:
    chunked = (
        b"HTTP/1.1 202 Accepted\r\nContent-Type: multipart/mixed; boundary=b\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    async with _serving(_answering(chunked)) as server:
        lean, _ = _transport()
        answer = await lean.send(_put(server.port))
        again = await lean.send(_put(server.port))
        await lean.close()

    assert answer.status_code == 202 and answer.body() == b"hello world"
    assert answer.content_type == "multipart/mixed; boundary=b"
    assert again.body() == b"hello world" and server.connections == 1


async def test_a_connection_idle_longer_than_keepalive_is_not_reused() -> None:
    async with _serving(_answering(_NO_CONTENT)) as server:
        lean, _ = _transport(keepalive=0.05)
        await lean.send(_put(server.port))
        await asyncio.sleep(0.2)
        await lean.send(_put(server.port))
        await lean.close()

    assert server.connections == 2


async def test_a_server_closing_after_its_answer_costs_a_new_connection_not_a_failure() -> None:
    closing = b"HTTP/1.1 204 No Content\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(closing)
            await writer.drain()

        return handle

    async with _serving(make) as server:
        lean, _ = _transport()
        answers = [await lean.send(_put(server.port)) for _ in range(2)]
        await lean.close()

    assert [a.status_code for a in answers] == [204, 204]
    assert server.connections == 2


async def test_a_connection_lost_after_the_request_was_sent_may_have_been_applied() -> None:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)  # and close without answering

        return handle

    async with _serving(make) as server:
        lean, _ = _transport()
        with pytest.raises(ServiceResponseError) as raised:
            await lean.send(_put(server.port))
        await lean.close()

    # Not a ServiceRequestError, which the store reads as "never sent".
    assert not isinstance(raised.value, ServiceRequestError)
    assert server.bodies == [b'{"a":1}']


async def test_no_server_listening_is_a_request_that_was_never_sent() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    lean, _ = _transport()

    with pytest.raises(ServiceRequestError):
        await lean.send(_put(port))
    await lean.close()


async def test_no_whole_answer_in_time_is_a_response_timeout_and_the_connection_is_dropped() -> (
    None
):
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if server.connections == 1:
                await server.read_request(reader)
                writer.write(b"HTTP/1.1 204 No Content\r\n")  # and nothing more
                await asyncio.sleep(30)
            while await server.read_request(reader):
                writer.write(_NO_CONTENT)

        return handle

    async with _serving(make) as server:
        lean, _ = _transport(read_timeout=0.2)
        with pytest.raises(ServiceResponseTimeoutError):
            await lean.send(_put(server.port))
        answer = await lean.send(_put(server.port))
        await lean.close()

    assert answer.status_code == 204
    assert server.connections == 2  # the half-answered connection was not reused


async def test_a_cancelled_write_closes_its_connection() -> None:
    closed = asyncio.Event()

    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if server.connections == 1:
                await server.read_request(reader)
                await reader.read()  # until the client closes it
                closed.set()
                return
            while await server.read_request(reader):
                writer.write(_NO_CONTENT)

        return handle

    async with _serving(make) as server:
        lean, _ = _transport()
        sending = asyncio.ensure_future(lean.send(_put(server.port)))
        deadline = asyncio.get_running_loop().time() + 10
        while not server.bodies and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        await asyncio.wait_for(closed.wait(), 10)
        answer = await lean.send(_put(server.port))
        await lean.close()

    assert answer.status_code == 204
    assert server.connections == 2


async def test_what_the_sdks_send_and_what_this_path_does_not_do_goes_to_aiohttp() -> None:
    lean, fallback = _transport()
    sdk = HttpRequest("GET", "http://127.0.0.1:1/acct/T()")  # not the store's own
    secure = StoreRequest("PUT", "https://acct.table.core.windows.net/T()")
    secure.set_bytes_body(b"{}")
    proxied = _put(1)
    streamed = _put(1)
    split = StoreRequest("PUT", "http://127.0.0.1:1/T()", headers={"x-bad": "a\r\nInjected: 1"})
    split.set_bytes_body(b"{}")

    for request, config in [
        (sdk, {}),
        (secure, {}),
        (proxied, {"proxies": {"http": "http://proxy:3128"}}),
        (streamed, {"stream": True}),
        (split, {}),
    ]:
        assert await lean.send(request, **config) == "fallback"
    await lean.close()

    assert [request for request, _ in fallback.sent] == [sdk, secure, proxied, streamed, split]


_CONFLICT = b"HTTP/1.1 409 Conflict\r\nContent-Length: 0\r\n\r\n"


async def test_an_interim_answer_is_not_taken_for_the_final_one() -> None:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(_NO_CONTENT)
            await server.read_request(reader)
            writer.write(_CONFLICT)
            await writer.drain()

        return handle

    async with _serving(make) as server:
        lean, _ = _transport()
        first = await lean.send(_put(server.port))
        second = await lean.send(_put(server.port))
        await lean.close()

    assert (first.status_code, second.status_code) == (204, 409)


async def test_bytes_nobody_asked_for_close_the_connection_they_came_on() -> None:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if server.connections == 1:
                await server.read_request(reader)
                writer.write(_NO_CONTENT + _CONFLICT)  # a second answer, to nothing
                await writer.drain()
                await reader.read()
                return
            while await server.read_request(reader):
                writer.write(_NO_CONTENT)

        return handle

    async with _serving(make) as server:
        lean, _ = _transport()
        first = await lean.send(_put(server.port))
        await asyncio.sleep(0.1)
        second = await lean.send(_put(server.port))
        await lean.close()

    assert (first.status_code, second.status_code) == (204, 204)
    assert server.connections == 2


async def test_a_write_under_way_when_the_transport_closes_closes_its_connection() -> None:
    closed = asyncio.Event()

    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            await asyncio.sleep(0.2)
            writer.write(_NO_CONTENT)
            await writer.drain()
            await reader.read()  # until the client closes it
            closed.set()

        return handle

    async with _serving(make) as server:
        lean, _ = _transport()
        sending = asyncio.ensure_future(lean.send(_put(server.port)))
        await asyncio.sleep(0.05)
        await lean.close()
        answer = await sending
        await asyncio.wait_for(closed.wait(), 10)

    assert answer.status_code == 204


async def test_a_host_header_given_is_the_only_one_sent() -> None:
    async with _serving(_answering(_NO_CONTENT)) as server:
        lean, _ = _transport()
        request = _put(server.port)
        request.headers["Host"] = "acct.localhost"
        await lean.send(request)
        await lean.close()

    assert server.heads[0].lower().count(b"\r\nhost:") == 1
    assert b"\r\nHost: acct.localhost\r\n" in server.heads[0]


async def test_reads_headers_aiohttp_would_encode_and_a_proxied_environment_go_to_aiohttp() -> None:
    lean, fallback = _transport()
    head = StoreRequest("HEAD", "http://127.0.0.1:1/T()")
    unicode = _put(1)
    unicode.headers["x-name"] = "café ✓"
    proxied_env, fallback_env = _transport(direct=False)

    assert await lean.send(head) == "fallback"
    assert await lean.send(unicode) == "fallback"
    assert await proxied_env.send(_put(1)) == "fallback"
    await lean.close()
    await proxied_env.close()

    assert [request for request, _ in fallback.sent] == [head, unicode]
    assert len(fallback_env.sent) == 1
