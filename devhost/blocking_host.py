"""``DurableTestHost`` for synchronous code: the engine runs on its own event loop thread.

Plain ``def test_...`` functions (no pytest-asyncio) and scripts call blocking methods while
orchestrations, activities and the virtual clock keep running in the background, as they do
on a real host between two requests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from devhost.testing import DurableTestHost

T = TypeVar("T")


class BlockingDurableHost:
    """A started :class:`~devhost.testing.DurableTestHost` with blocking methods.

    Parameters
    ----------
    factory
        Builds the host; called on the host's own loop, where its clients and tasks live.

    Examples
    --------
    >>> with BlockingDurableHost(lambda: DurableTestHost(".")) as host:
    ...     status = host.run("hello_sequence", {"cities": ["Tokyo"]})
    """

    def __init__(self, factory: Callable[[], DurableTestHost]) -> None:
        self._factory = factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="durable-test-host", daemon=True
        )
        self._host: DurableTestHost | None = None
        self._http_url: str | None = None

    def __enter__(self) -> BlockingDurableHost:
        self._thread.start()

        async def enter() -> DurableTestHost:
            host = self._factory()
            return await host.__aenter__()

        try:
            self._host = self.call(enter())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._host is not None:
                self.call(self._host.__aexit__(None, None, None))
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    @property
    def host(self) -> DurableTestHost:
        """The asynchronous host (its ``engine``, ``store``, ``clock`` and ``task_hub``)."""
        if self._host is None:
            raise RuntimeError("the host is not started: use it in a 'with' block")
        return self._host

    def call(self, awaitable: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
        """Run ``awaitable`` on the host's loop and return its result (or raise its error)."""

        async def run() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def start(self, name: str, input: Any = None, instance_id: str | None = None) -> str:
        """Start an orchestration as ``client.start_new`` would; returns the instance ID."""
        return self.call(self.host.start(name, input, instance_id))

    def raise_event(
        self, instance_id: str, event_name: str, data: Any = None, *, as_client: bool = True
    ) -> None:
        """Raise an event (see :meth:`DurableTestHost.raise_event`)."""
        self.call(self.host.raise_event(instance_id, event_name, data, as_client=as_client))

    def status(self, instance_id: str, *, history: bool = False) -> dict[str, Any] | None:
        """The instance's status (with its history when asked), or None."""
        return self.call(self.host.status(instance_id, history=history))

    def wait(self, instance_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the instance is terminal; the error shows its history otherwise."""
        return self.call(self.host.wait(instance_id, timeout))

    def run(self, name: str, input: Any = None, timeout: float = 10.0) -> dict[str, Any]:
        """Start an orchestration and wait for it to finish; returns its status."""
        return self.call(self.host.run(name, input, timeout))

    def wait_for_custom_status(
        self, instance_id: str, predicate: Callable[[Any], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """Wait until ``predicate(custom_status)`` is true (e.g. a stage was reached)."""
        return self.call(self.host.wait_for_custom_status(instance_id, predicate, timeout))

    def idle(self, timeout: float = 5.0) -> None:
        """Wait until no episode, activity or entity operation is pending."""
        self.call(self.host.idle(timeout))

    def advance(self, delta: timedelta) -> None:
        """Move virtual time forward; due timers fire."""

        async def advance() -> None:
            self.host.advance(delta)

        self.call(advance())

    def now(self) -> datetime:
        """The host's current (virtual) time."""
        moment: datetime = self.host.now()
        return moment

    def http_url(self, route_prefix: str = "api") -> str:
        """The base URL (``http://127.0.0.1:<port>``) of the app's routes served by this host.

        Use any HTTP client: ``urllib.request.urlopen(host.http_url() + "/api/orders")``.
        """
        if self._http_url is None:

            async def serve() -> str:
                client = await self.host.http(route_prefix)
                return str(client.make_url("")).rstrip("/")

            self._http_url = self.call(serve())
        return self._http_url
