"""The crash model: a store that stops after its k-th write, and an engine abandoned with it.

A process killed with SIGKILL keeps every storage write that completed and none after; its
memory is gone. Here:

* ``CrashPoint`` counts the writes of one process life. The write that would exceed the limit
  raises ``StoreCrashed`` instead of reaching storage, and so does every call after it (the
  store is frozen, reads included).
* ``CrashingMemoryStore`` wraps a ``MemoryStore`` (the surviving state, shared by the lives).
  A checkpoint is two writes, as on Azure Storage: the history (rows and sentinel, one
  entity-group transaction) and then the instance row; a crash between them keeps the first.
  A checkpoint without its row (``Checkpoint.with_row``) is one.
  Deleting n messages is n writes.
* ``crashing_azure_store`` gives an ``AzureStore`` whose every mutating request (and every
  queue receive, which hides messages) passes the crash point first, so the counted writes
  are the HTTP requests the service would see.
* ``EngineLife`` runs one process life: a fresh ``Engine`` on the store, abandoned without
  ``stop()`` when the life ends (its tasks are cancelled; nothing it held in memory is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from devhost.app.loader import FunctionIndex
from devhost.engine.clock import Clock, VirtualClock
from devhost.engine.runtime import Engine, EngineSettings
from devhost.store.azure import AzureStore
from devhost.store.base import (
    Checkpoint,
    InstanceQuery,
    InstanceRow,
    Store,
    StoredHistory,
    StoredMessage,
)
from devhost.store.memory import MemoryStore


class StoreCrashed(Exception):
    """The process died: this storage call (and every later one) never happened."""


class CrashPoint:
    """Counts writes and freezes the store after ``limit`` of them (None: never)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.writes = 0
        self.crashed = False

    @property
    def reached(self) -> bool:
        """No write can happen any more (the next one crashes)."""
        return self.crashed or (self.limit is not None and self.writes >= self.limit)

    def stop_after(self, writes: int) -> None:
        """Crash after ``writes`` more writes (0: at the next one)."""
        self.limit = self.writes + writes

    def write(self) -> None:
        """Called before each write: raise if it falls after the crash."""
        if not self.crashed and self.limit is not None and self.writes >= self.limit:
            self.crashed = True
        if self.crashed:
            raise StoreCrashed(f"crashed after write {self.limit}")
        self.writes += 1

    def read(self) -> None:
        if self.crashed:
            raise StoreCrashed(f"crashed after write {self.limit}")


class CrashingMemoryStore(Store):
    """A ``MemoryStore`` seen through a crash point."""

    def __init__(
        self,
        inner: MemoryStore,
        point: CrashPoint,
        *,
        crash_after: Callable[[Checkpoint], bool] | None = None,
        torn: bool = False,
    ) -> None:
        self.inner = inner
        self.point = point
        self.task_hub = inner.task_hub
        # Crash right after the first checkpoint that matches: after both of its writes, or
        # (torn) between its history and its row.
        self._crash_after = crash_after
        self._torn = torn

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        """Nothing to release (and a dead process releases nothing)."""

    async def count_operations(self) -> int:
        return await self.inner.count_operations()

    async def put_message(self, message: StoredMessage) -> None:
        self.point.write()
        await self.inner.put_message(message)

    async def read_messages(self) -> list[StoredMessage]:
        self.point.read()
        return await self.inner.read_messages()

    async def delete_messages(self, messages: list[StoredMessage]) -> None:
        for message in messages:
            self.point.write()
            await self.inner.delete_messages([message])

    async def write_row(self, row: InstanceRow) -> None:
        self.point.write()
        await self.inner.write_row(row)

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        instance_id = checkpoint.row.instance_id
        self.point.write()
        before = self.inner.instances.get(instance_id)
        await self.inner.write_checkpoint(checkpoint)
        matches = self._crash_after is not None and self._crash_after(checkpoint)
        if not checkpoint.with_row:  # the history only: one write
            if matches:
                self.point.stop_after(0)
            return
        if matches and self._torn:
            self.point.stop_after(0)
        try:
            self.point.write()
        except StoreCrashed:
            # The history transaction committed; the row upsert after it never happened.
            if before is None:
                del self.inner.instances[instance_id]
            else:
                self.inner.instances[instance_id] = before
            raise
        if matches:
            self.point.stop_after(0)

    async def read_instance(self, instance_id: str) -> InstanceRow | None:
        self.point.read()
        return await self.inner.read_instance(instance_id)

    async def read_history(self, instance_id: str) -> StoredHistory | None:
        self.point.read()
        return await self.inner.read_history(instance_id)

    async def query_instances(
        self, query: InstanceQuery, top: int, continuation: str | None
    ) -> tuple[list[InstanceRow], str | None]:
        self.point.read()
        return await self.inner.query_instances(query, top, continuation)

    async def delete_instance(self, instance_id: str, history_rows: int | None = None) -> bool:
        self.point.write()
        return await self.inner.delete_instance(instance_id, history_rows)


_READ_METHODS = frozenset({"GET", "HEAD"})


class _CrashingAzureStore(AzureStore):
    """``AzureStore`` whose requests pass a crash point (set after ``open``)."""

    point: CrashPoint | None = None

    def _count_request(self, request: Any) -> None:
        super()._count_request(request)
        if self.point is None:
            return
        http = request.http_request
        # Receiving queue messages hides them: a write, as far as a crash is concerned.
        receives = http.method == "GET" and "/messages" in http.url and "peekonly" not in http.url
        if http.method in _READ_METHODS and not receives:
            self.point.read()
        else:
            self.point.write()


async def crashing_azure_store(connection_string: str, task_hub: str, point: CrashPoint) -> Store:
    """An opened ``AzureStore`` on ``task_hub`` whose writes from now on pass ``point``."""
    store = _CrashingAzureStore(connection_string, task_hub)
    await store.open()
    store.point = point
    return store


class EngineLife:
    """One life of a host process on ``store``: started, then run or abandoned.

    ``abandon()`` is the kill: every task started since the life began is cancelled, the engine
    is dropped without ``stop()``, and whatever it held in memory goes with it.
    """

    def __init__(
        self,
        index: FunctionIndex,
        store: Store,
        point: CrashPoint,
        clock: Clock,
        *,
        task_hub: str,
        settings: EngineSettings | None = None,
    ) -> None:
        self.point = point
        self.store = store
        self._before = asyncio.all_tasks()
        self.engine = Engine(
            index,
            store,
            task_hub=task_hub,
            clock=clock,
            settings=settings or EngineSettings(checkpoint_interval=0),
        )

    async def abandon(self) -> None:
        self.point.crashed = True  # nothing the dead process still runs reaches storage
        mine = asyncio.current_task()
        doomed = [t for t in asyncio.all_tasks() if t not in self._before and t is not mine]
        for task in doomed:
            task.cancel()
        for task in doomed:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(BaseException):
            await self.store.close()


@contextlib.asynccontextmanager
async def life_that_crashes(
    index: FunctionIndex,
    store: MemoryStore,
    *,
    crash_after: Callable[[Checkpoint], bool] | None = None,
    torn: bool = False,
) -> AsyncIterator[EngineLife]:
    """A started engine on ``store`` that dies at its crash point (``life.point.stop_after``,
    or ``crash_after`` a checkpoint, ``torn`` between its two writes) or, at the latest, when
    the block ends."""
    point = CrashPoint()
    wrapped = CrashingMemoryStore(store, point, crash_after=crash_after, torn=torn)
    life = EngineLife(index, wrapped, point, VirtualClock(), task_hub=store.task_hub)
    try:
        await life.engine.start()
        yield life
    finally:
        await life.abandon()
