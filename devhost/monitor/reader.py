"""What the monitor reads from a task hub: instance lists, one instance, entities.

Everything goes through the :class:`~devhost.store.base.Store` interface, so the same code
reads the host's own hub, an Azurite hub, or a real storage account. The Instances table can
filter on status, creation time, ID prefix and name, but it can neither sort nor search the
custom status, so a list reads every matching row (up to ``scan_limit``), then filters,
sorts and pages in memory, as Durable Functions Monitor does for its sorted views.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from devhost.store.base import InstanceQuery, InstanceRow, Store, StoredHistory

SORT_FIELDS = ("createdTime", "lastUpdatedTime", "name", "instanceId", "runtimeStatus", "duration")
DEFAULT_SCAN_LIMIT = 10_000
_STORE_PAGE = 1000


@dataclass
class InstanceFilters:
    """The instance list's filters (all optional, all combined)."""

    name: str | None = None
    runtime_status: list[str] = field(default_factory=list)
    created_from: datetime | None = None
    created_to: datetime | None = None
    instance_id_prefix: str | None = None
    custom_status_text: str | None = None


@dataclass
class InstancePage:
    """One page of the sorted, filtered list."""

    rows: list[InstanceRow]
    total: int
    truncated: bool


@dataclass
class EntityView:
    """One entity (``@name@key`` instance) and its state."""

    name: str
    key: str
    instance_id: str
    exists: bool
    state: Any
    last_updated_time: datetime


def is_entity(row: InstanceRow) -> bool:
    """True for an entity's row (its instance ID is ``@name@key``)."""
    return row.instance_id.startswith("@")


def duration_seconds(row: InstanceRow) -> float | None:
    """How long a finished instance ran (created to completed), or None while it runs."""
    end = row.completed_time
    if end is None or row.runtime_status not in ("Completed", "Failed", "Terminated", "Canceled"):
        return None
    return max(0.0, (end - row.created_time).total_seconds())


def _sort_key(sort: str) -> Any:
    if sort == "duration":
        return lambda row: (duration_seconds(row) is None, duration_seconds(row) or 0.0)
    if sort == "lastUpdatedTime":
        return lambda row: row.last_updated_time
    if sort == "name":
        return lambda row: (row.name.lower(), row.created_time)
    if sort == "instanceId":
        return lambda row: row.instance_id
    if sort == "runtimeStatus":
        return lambda row: (row.runtime_status, row.created_time)
    return lambda row: row.created_time


class HubReader:
    """Read-only views of one task hub.

    Parameters
    ----------
    store : Store
        The hub's store (the host's own, or one from ``connection.open_hub_store``).
    scan_limit : int
        The most rows one list or metrics request reads; a list past it says it is truncated.
    """

    def __init__(self, store: Store, *, scan_limit: int = DEFAULT_SCAN_LIMIT) -> None:
        self.store = store
        self.scan_limit = scan_limit

    @property
    def task_hub(self) -> str:
        return self.store.task_hub

    async def scan(self, query: InstanceQuery) -> tuple[list[InstanceRow], bool]:
        """Every row matching ``query`` (up to ``scan_limit``), and whether rows were left."""
        rows: list[InstanceRow] = []
        token: str | None = None
        try:
            while True:
                page, token = await self.store.query_instances(query, _STORE_PAGE, token)
                rows.extend(page)
                if token is None or len(rows) >= self.scan_limit:
                    break
        except ResourceNotFoundError:
            return [], False  # the hub has no Instances table yet: nothing ran there
        return rows[: self.scan_limit], token is not None or len(rows) > self.scan_limit

    async def list_instances(
        self,
        filters: InstanceFilters,
        *,
        sort: str = "createdTime",
        descending: bool = True,
        offset: int = 0,
        limit: int = 100,
    ) -> InstancePage:
        """One page of the orchestration instances matching ``filters``, sorted."""
        query = InstanceQuery(
            runtime_status=list(filters.runtime_status),
            created_from=filters.created_from,
            created_to=filters.created_to,
            instance_id_prefix=filters.instance_id_prefix or None,
        )
        rows, truncated = await self.scan(query)
        name = (filters.name or "").strip().lower()
        text = (filters.custom_status_text or "").strip().lower()
        matched = [
            row
            for row in rows
            if not is_entity(row)
            and (not name or name in row.name.lower())
            and (not text or text in (row.custom_status or "").lower())
        ]
        matched.sort(key=_sort_key(sort if sort in SORT_FIELDS else "createdTime"))
        if descending:
            matched.reverse()
        return InstancePage(matched[offset : offset + limit], len(matched), truncated)

    async def instance(self, instance_id: str) -> InstanceRow | None:
        """The instance's row, or None."""
        try:
            return await self.store.read_instance(instance_id)
        except ResourceNotFoundError:
            return None

    async def history(self, instance_id: str) -> StoredHistory | None:
        """The current execution's history, or None."""
        try:
            return await self.store.read_history(instance_id)
        except ResourceNotFoundError:
            return None

    async def entities(self, name: str | None = None) -> tuple[list[EntityView], bool]:
        """Every entity (optionally of one entity name), with its state; and the truncation."""
        prefix = f"@{name.lower()}@" if name else "@"
        rows, truncated = await self.scan(InstanceQuery(instance_id_prefix=prefix))
        return [entity_view(row) for row in rows if is_entity(row)], truncated


def entity_view(row: InstanceRow) -> EntityView:
    """The entity in an entity's row: its name, key and state (decoded when it is JSON).

    The row's input is the scheduler state (``{"exists": ..., "state": "<JSON text>"}``), as
    both this host and DurableTask.AzureStorage keep it; anything else shows as raw text.
    """
    entity_name, _, key = row.instance_id[1:].partition("@")
    exists, state = True, row.input
    try:
        scheduler = json.loads(row.input or "null")
    except ValueError:
        scheduler = None
    if isinstance(scheduler, dict) and "state" in scheduler:
        exists = bool(scheduler.get("exists", True))
        state = scheduler.get("state")
    if isinstance(state, str):
        try:
            state = json.loads(state)
        except ValueError:
            pass
    return EntityView(entity_name, key, row.instance_id, exists, state, row.last_updated_time)
