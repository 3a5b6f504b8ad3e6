"""The instance cache: orchestration instances in memory, loaded from the store on demand.

It reads, never writes. A row older than its history (a crash between the two writes of a
checkpoint, in the same execution or across a continue-as-new) is repaired in memory from the
history, the record, and handed to the checkpointer as changed, so the next checkpoint writes
it again. Finished instances are evicted, least recently used first, once nothing of them is
left to write.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType

from devhost.engine.checkpointer import Checkpointer
from devhost.engine.instance import (
    Instance,
    instance_from_row,
    parent_from_history,
    row_from_history,
)
from devhost.store.base import InstanceRow, Store

# Evicted instances whose history rows are remembered (an ID and an int: about 10 MB).
_EVICTED_ROWS = 100_000
# Row fields a history decides; a row that differs in any is older than its history.
_FROM_HISTORY = (
    "name",
    "execution_id",
    "runtime_status",
    "input",
    "output",
    "completed_time",
    "generation",
)


class InstanceCache:
    """Instances by ID, least recently used first.

    Parameters
    ----------
    store
        Where instances are read from.
    checkpointer
        Told what a loaded instance holds in the store (and whether it was repaired).
    capacity
        How many instances to keep; only finished, fully written ones are evicted. Of an
        evicted instance, the number of history rows it left in the store is kept (a few bytes
        each, the newest ``_EVICTED_ROWS``), so that a purge deletes them by key.
    on_loaded
        Called once for each instance read from the store (recovery of its work).
    """

    def __init__(
        self,
        store: Store,
        checkpointer: Checkpointer,
        capacity: int,
        on_loaded: Callable[[Instance], None],
    ) -> None:
        self._store = store
        self._checkpointer = checkpointer
        self._capacity = capacity
        self._on_loaded = on_loaded
        self._instances: OrderedDict[str, Instance] = OrderedDict()
        self._loading: dict[str, asyncio.Future[Instance | None]] = {}
        self._evicted_rows: OrderedDict[str, int] = OrderedDict()

    @property
    def view(self) -> Mapping[str, Instance]:
        """The cached instances (read-only)."""
        return MappingProxyType(self._instances)

    def get(self, instance_id: str) -> Instance | None:
        """The instance if it is in memory."""
        return self._instances.get(instance_id)

    def add(self, instance: Instance) -> None:
        """A new instance (a start, a sub-orchestration)."""
        self._evicted_rows.pop(instance.instance_id, None)  # it knows its own now
        self._instances[instance.instance_id] = instance
        self._instances.move_to_end(instance.instance_id)
        self.evict()

    def keep(self, instance: Instance) -> Instance:
        """The cached instance of ``instance``'s ID, ``instance`` itself if none is (it was
        evicted while a client operation held it: its stored state is still its own)."""
        cached = self._instances.get(instance.instance_id)
        if cached is not None:
            return cached
        self.add(instance)
        return instance

    def discard(self, instance_id: str) -> None:
        """Forget an instance (purged): it is not written again."""
        self._evicted_rows.pop(instance_id, None)
        instance = self._instances.pop(instance_id, None)
        if instance is not None:
            self._checkpointer.forget(instance)

    def evicted_rows(self, instance_id: str) -> int | None:
        """The history rows (besides the sentinel) that ``instance_id`` left in the store
        when it was evicted, if known (``Checkpointer.stored_rows``); None for one in memory.

        Nothing writes an evicted instance: it finished, and whatever starts it again loads
        it first (``add`` forgets the count). The retention job purges instances the cache
        evicted long before, and without the count a purge lists the history (on Azurite a
        scan of the whole History table).
        """
        return self._evicted_rows.get(instance_id)

    async def load(self, instance_id: str) -> Instance | None:
        """The instance from memory, or read from the store (None if it does not exist)."""
        instance = self._instances.get(instance_id)
        if instance is not None:
            self._instances.move_to_end(instance_id)
            return instance
        loading = self._loading.get(instance_id)
        if loading is not None:
            return await asyncio.shield(loading)
        future = self._loading[instance_id] = asyncio.get_running_loop().create_future()
        try:
            instance = await self._read(instance_id)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: a concurrent loader re-raises it, or nobody waits
            raise
        finally:
            del self._loading[instance_id]
        future.set_result(instance)
        return instance

    async def _read(self, instance_id: str) -> Instance | None:
        row = await self._store.read_instance(instance_id)
        if row is None:
            return None
        stored = await self._store.read_history(instance_id)
        row_created = row.created_time  # the row as stored, before any repair
        repaired = False
        if stored is not None and stored.events:
            fixed = row_from_history(row, stored.events)
            repaired = _differs(fixed, row)
            row = fixed
        cached = self._instances.get(instance_id)
        if cached is not None:
            return cached  # created meanwhile (a start, a sub-orchestration)
        instance = instance_from_row(row)
        instance.recovered = True
        if stored is not None and stored.execution_id == row.execution_id:
            instance.history = stored.events
            instance.parent = parent_from_history(stored.events)
        self._checkpointer.adopt(instance, stored, repaired=repaired, row_created=row_created)
        self.add(instance)
        self._on_loaded(instance)
        return instance

    def evict(self) -> None:
        excess = len(self._instances) - self._capacity
        if excess <= 0:
            return
        # The oldest are looked at first and the scan stops once enough are found: a copy of
        # every key on each add, once the cache was full, cost a fiftieth of the test host's CPU.
        victims: list[str] = []
        for instance_id, instance in self._instances.items():
            if len(victims) == excess:
                break
            if (
                instance.is_terminal
                and not instance.inbox
                and self._checkpointer.is_clean(instance)
                # A purge deletes what is left of its consumed messages (a queued start).
                and not instance.durable.deleting
            ):
                victims.append(instance_id)
        for instance_id in victims:
            rows = self._checkpointer.stored_rows(self._instances.pop(instance_id))
            if rows is not None:
                self._evicted_rows[instance_id] = rows
        while len(self._evicted_rows) > _EVICTED_ROWS:
            self._evicted_rows.popitem(last=False)


def _differs(repaired: InstanceRow, stored: InstanceRow) -> bool:
    return any(getattr(repaired, name) != getattr(stored, name) for name in _FROM_HISTORY)
