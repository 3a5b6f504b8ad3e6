"""Store calls that ride out storage trouble: one classification, backoff with jitter, and
one log line when an outage starts and one when it ends.

Two layers retry, each for what it can see:

* Each SDK retries single requests (see the comment at the top of ``devhost.store.azure``):
  a busy answer or a reset socket, three times within about a second. It does not resend a
  POST whose answer was lost (a table transaction), and it gives up after that second.
* :class:`RetryingStore` retries whole store calls, which are idempotent by design (upserts of
  the same rows, deletes that ignore what is gone, a message sent again under the same
  ``msg_id``, which ``read_messages`` returns once), with exponential backoff and jitter, as
  DBOS's ``db_retry`` wraps its system database. Beyond the SDK it brings: the POSTs the SDK
  does not resend; a call of several requests (a checkpoint: blobs, a transaction, a row)
  retried as one; outages longer than a second (an emulator restarted, a network that comes
  back); and knowing when storage is down. While it is, a call made for a client tries once
  and raises :class:`StorageUnavailable` (the HTTP front answers 503 with ``Retry-After``)
  instead of holding the client, and background writes (checkpoints, message deletes) keep
  trying within their patience.

Non-transient errors (404 not found, 409 conflict, 412 precondition, 400, authentication) are
raised at once: retrying cannot change their answer, and the stores handle the expected ones.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ServiceRequestError,
    ServiceResponseError,
)

from devhost.store.base import (
    Checkpoint,
    InstanceQuery,
    InstanceRow,
    Store,
    StoredHistory,
    StoredMessage,
)
from devhost.store.write_window import a_client_waits

__all__ = [
    "RetryingStore",
    "StorageHealth",
    "StorageUnavailable",
    "is_transient",
]

log = logging.getLogger("devhost.store")

_T = TypeVar("_T")

# Request timeout and throttled; server errors other than 501 Not Implemented and 505 HTTP
# Version Not Supported, which never change (the statuses the SDKs retry).
_TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})
_PERMANENT_SERVER_STATUSES = frozenset({501, 505})

# What a client is told to wait before trying again while storage is down.
RETRY_AFTER_SECONDS = 5


class StorageUnavailable(Exception):
    """Storage did not answer within the call's patience, or is known to be down.

    Parameters
    ----------
    operation
        The store call that failed.
    retry_after
        Seconds a client should wait before trying again.
    """

    def __init__(self, operation: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(f"storage is unavailable ({operation}); retry in {retry_after} s")
        self.operation = operation
        self.retry_after = retry_after


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` may go away if the same call is made again later.

    This is the one place that decides it: connection failures and timeouts (the SDKs raise
    ``ServiceRequestError`` before or while sending, ``ServiceResponseError`` after), a
    response cut short, and the statuses above. Everything else, including 404, 409, 412 and
    authentication failures, is an answer.
    """
    if isinstance(error, StorageUnavailable | ClientAuthenticationError):
        return False
    if isinstance(error, ServiceRequestError | ServiceResponseError | IncompleteReadError):
        return True
    if isinstance(error, HttpResponseError):
        status = error.status_code or 0
        return status in _TRANSIENT_CLIENT_STATUSES or (
            status >= 500 and status not in _PERMANENT_SERVER_STATUSES
        )
    # Anything the SDKs did not wrap (they wrap aiohttp's errors): sockets and timeouts.
    return isinstance(error, ConnectionError | TimeoutError)


def _describe(error: BaseException) -> str:
    """One short line for the log (no traceback, no response body)."""
    status = getattr(error, "status_code", None)
    text = str(error).splitlines()[0][:160] if str(error) else ""
    return f"{type(error).__name__}{f' {status}' if status else ''}: {text}"


class StorageHealth:
    """Whether storage answers, and the two log lines of each outage.

    Storage is *down* once calls have failed with transient errors and none has succeeded
    for ``outage_after`` seconds; the first success after that ends the outage. A blip shorter
    than that (a busy answer retried) is not reported.

    Parameters
    ----------
    outage_after
        Seconds of failures without a success before storage counts as down.
    clock
        Monotonic seconds (tests pass their own).
    """

    def __init__(
        self, outage_after: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.outage_after = outage_after
        self._clock = clock
        self._failing_since: float | None = None
        self._down_since: float | None = None
        self._failures = 0
        self.outages = 0

    @property
    def is_down(self) -> bool:
        """Whether an outage is in progress (reported in the log)."""
        return self._down_since is not None

    def failed(self, operation: str, error: BaseException) -> None:
        """Record a transient failure; report the outage when this one starts it."""
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        self._failures += 1
        if self._down_since is None and now - self._failing_since >= self.outage_after:
            self._down_since = self._failing_since
            self.outages += 1
            log.warning(
                "Storage is unavailable (%s failed for %.1f s; %s). Retrying with backoff; "
                "work in memory carries on, and requests that need storage answer 503 until "
                "it is back.",
                operation,
                now - self._failing_since,
                _describe(error),
            )

    def succeeded(self) -> None:
        """Record a success; report the end of an outage."""
        if self._down_since is not None:
            log.warning(
                "Storage is available again after %.1f s (%d failed attempts meanwhile).",
                self._clock() - self._down_since,
                self._failures,
            )
            self._down_since = None
        self._failing_since = None
        self._failures = 0


class RetryingStore(Store):
    """A ``Store`` that retries the transient failures of ``inner`` (see the module notes).

    Parameters
    ----------
    inner
        The store doing the work (``AzureStore``, or a ``MemoryStore`` under test faults).
    patience
        Seconds a call keeps retrying while storage is not known to be down.
    background_patience
        Seconds a checkpoint or a delete keeps retrying, through an outage too. The engine
        tries again after that, so this bounds only how long one call holds its caller.
    open_patience
        Seconds :meth:`open` waits for storage (a host started before its emulator).
    first_delay, max_delay
        The backoff: ``first_delay * 2**(n-1)`` capped at ``max_delay``, times a random
        factor between 0.5 and 1.5 so that callers that failed together do not retry together.
    health
        Shared outage state (one per storage account).
    rng
        The jitter's random source (a seeded one makes the delays reproducible).
    """

    def __init__(
        self,
        inner: Store,
        *,
        patience: float = 15.0,
        background_patience: float = 30.0,
        open_patience: float = 120.0,
        first_delay: float = 0.05,
        max_delay: float = 2.0,
        health: StorageHealth | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.task_hub = inner.task_hub
        self.patience = patience
        self.background_patience = background_patience
        self.open_patience = open_patience
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.health = health or StorageHealth()
        self._rng = rng or random.Random()
        self.retries = 0  # attempts that failed transiently and were made again

    def _delay(self, attempt: int) -> float:
        base = min(self.max_delay, self.first_delay * 2 ** (attempt - 1))
        return base * self._rng.uniform(0.5, 1.5)

    async def _call(
        self,
        operation: str,
        call: Callable[[], Awaitable[_T]],
        *,
        patience: float | None = None,
        through_outage: bool = False,
    ) -> _T:
        """Run ``call`` until it succeeds, fails for good, or runs out of patience."""
        if through_outage and a_client_waits():
            patience, through_outage = None, False
        deadline = time.monotonic() + (self.patience if patience is None else patience)
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await call()
            except Exception as error:
                if not is_transient(error):
                    raise
                self.health.failed(operation, error)
                delay = self._delay(attempt)
                if (self.health.is_down and not through_outage) or (
                    time.monotonic() + delay > deadline
                ):
                    raise StorageUnavailable(operation) from error
                self.retries += 1
                await asyncio.sleep(delay)
            else:
                self.health.succeeded()
                return result

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create what is missing, waiting for storage to answer (up to ``open_patience``)."""
        await self._call("open", self.inner.open, patience=self.open_patience, through_outage=True)

    async def close(self) -> None:
        await self.inner.close()

    async def count_operations(self) -> int:
        return await self.inner.count_operations()

    def is_down(self) -> bool:
        return self.health.is_down

    # -- durable inbox --------------------------------------------------------------------------

    async def put_message(self, message: StoredMessage) -> None:
        await self._call("put_message", lambda: self.inner.put_message(message))

    async def read_messages(self) -> list[StoredMessage]:
        return await self._call("read_messages", self.inner.read_messages)

    async def delete_messages(self, messages: list[StoredMessage]) -> None:
        await self._call(
            "delete_messages",
            lambda: self.inner.delete_messages(messages),
            patience=self.background_patience,
            through_outage=True,
        )

    # -- instances and histories ----------------------------------------------------------------

    async def write_row(self, row: InstanceRow) -> None:
        await self._call("write_row", lambda: self.inner.write_row(row))

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._call(
            "write_checkpoint",
            lambda: self.inner.write_checkpoint(checkpoint),
            patience=self.background_patience,
            through_outage=True,
        )

    async def read_instance(self, instance_id: str) -> InstanceRow | None:
        return await self._call("read_instance", lambda: self.inner.read_instance(instance_id))

    async def read_history(self, instance_id: str) -> StoredHistory | None:
        return await self._call("read_history", lambda: self.inner.read_history(instance_id))

    async def query_instances(
        self, query: InstanceQuery, top: int, continuation: str | None
    ) -> tuple[list[InstanceRow], str | None]:
        return await self._call(
            "query_instances", lambda: self.inner.query_instances(query, top, continuation)
        )

    async def delete_instance(self, instance_id: str, history_rows: int | None = None) -> bool:
        return await self._call(
            "delete_instance", lambda: self.inner.delete_instance(instance_id, history_rows)
        )
