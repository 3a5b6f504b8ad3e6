"""Who waits for a store write, and the window that lets a client's write go first.

A write a client waits for (a start's row, the checkpoint of a finished instance whose status
is read, a purge's or a listing's writes) is made inside :func:`for_a_client`. Two layers read
it: the retrying layer gives such a write a client's patience (one attempt while storage is
down), and a store that bounds its writes in flight (:class:`WriteWindow`, the Azure store)
sends it before the background writes waiting their turn (``CLIENTS_IN_A_ROW``). Without the
second, a client's one attempt waited behind every background checkpoint queued ahead of it,
each holding its slot through its SDK's retries while storage was down: the 503 came after
all of them. Only the client's own store calls are made inside: a task started there copies
the context, so the engine starts its background work (deleting consumed messages) outside.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from collections.abc import AsyncIterator, Iterator

__all__ = ["CLIENTS_IN_A_ROW", "WriteWindow", "a_client_waits", "for_a_client"]

_CLIENT_WAITS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "devhost_store_client_waits", default=False
)


@contextlib.contextmanager
def for_a_client() -> Iterator[None]:
    """Store calls made inside wait for a client: a checkpoint or a delete made here has a
    client call's patience (while storage is down it tries once and raises
    ``StorageUnavailable``) instead of riding the outage out, and its write is sent before
    background writes waiting for the write window.

    The engine writes a finished instance before it shows its status; a client asking then
    gets its 503 after that one write, not after the background patience. A context variable
    rather than a parameter of every store call: only the store layers read it.
    """
    token = _CLIENT_WAITS.set(True)
    try:
        yield
    finally:
        _CLIENT_WAITS.reset(token)


def a_client_waits() -> bool:
    """Whether the running store call was made inside :func:`for_a_client`."""
    return _CLIENT_WAITS.get()


# Slots handed to clients' writes in a row, at most, while background writes wait: a steady
# stream of clients (a load of starts, a listing writing 64 instances) cannot hold the group
# commit back for ever, and a client waiting for a background write of its instance (a status
# read while the group commit writes it) is not kept waiting by other clients.
CLIENTS_IN_A_ROW = 4


class WriteWindow:
    """At most ``size`` writes in flight at once; the others wait, a client's first.

    Written here because asyncio's ``Semaphore`` serves its waiters strictly in order and has
    no priority: this is a semaphore with two queues, each served in order, the clients'
    first but never more than ``CLIENTS_IN_A_ROW`` times while background writes wait. A
    released slot is handed to the next waiter directly, so a write arriving meanwhile cannot
    overtake the queue.

    Parameters
    ----------
    size
        Writes in flight at once (1 or more); None: no limit, nothing waits.
    """

    def __init__(self, size: int | None) -> None:
        if size is not None and size < 1:
            raise ValueError(f"write_window must be 1 or more, or None, not {size}")
        self.size = size
        self._free = size or 0
        self._clients: collections.deque[asyncio.Future[None]] = collections.deque()
        self._background: collections.deque[asyncio.Future[None]] = collections.deque()
        self._clients_in_a_row = 0

    @property
    def waiting(self) -> int:
        """Writes waiting for a slot."""
        return sum(not f.done() for f in (*self._clients, *self._background))

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block (a client's write, see :func:`for_a_client`, first)."""
        if self.size is None:
            yield
            return
        if self._free > 0:
            self._free -= 1
        else:
            queue = self._clients if a_client_waits() else self._background
            turn = asyncio.get_running_loop().create_future()
            queue.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.cancelled():
                    with contextlib.suppress(ValueError):
                        queue.remove(turn)
                else:  # handed a slot, then cancelled before it ran: pass the slot on
                    self._release()
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        order = (self._clients, self._background)
        if self._clients_in_a_row >= CLIENTS_IN_A_ROW:
            order = (self._background, self._clients)
        for queue in order:
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    self._clients_in_a_row = (
                        self._clients_in_a_row + 1 if queue is self._clients else 0
                    )
                    return
        self._free += 1
        self._clients_in_a_row = 0
