"""Where timer triggers keep their schedule status and their one-runner lock.

As the real host does (azure-webjobs-sdk-extensions ``StorageScheduleMonitor``, azure-webjobs-sdk
``BlobLeaseDistributedLockManager``), in the ``azure-webjobs-hosts`` container of the host's
storage account (``AzureWebJobsStorage``):

- ``timers/{hostId}/Host.Functions.{name}/status``: ``{"Last", "Next", "LastUpdated"}`` written
  after every run of a function with ``use_monitor``, read at start to find a missed occurrence;
- ``locks/{hostId}/Host.Functions.{name}.Listener``: a blob whose lease (60 s, renewed every
  30 s) says which host runs the schedule; others try again every minute.

``Host.Functions.{name}`` is the name the Functions host gives a function's method, which both
paths use. ``MemoryTimerState`` keeps the same in memory for in-process tests.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient

from devhost.storage_settings import StorageConnection, service_client

log = logging.getLogger("devhost.timers")

HOSTS_CONTAINER = "azure-webjobs-hosts"
LISTENER_LEASE_SECONDS = 60  # SingletonOptions.ListenerLockPeriod
# .NET's default(DateTime): "never" in Last and LastUpdated.
NEVER = datetime.min.replace(tzinfo=UTC)
_FRACTION = re.compile(r"(\.\d{6})\d+")


def timer_name(function: str) -> str:
    """The name the schedule monitor and the lock know a function by."""
    return f"Host.Functions.{function}"


def status_blob(host_id: str, function: str) -> str:
    return f"timers/{host_id}/{timer_name(function)}/status"


def lock_blob(host_id: str, function: str) -> str:
    return f"locks/{host_id}/{timer_name(function)}.Listener"


def _dotnet_time(moment: datetime) -> str:
    # Newtonsoft writes a local DateTime with its offset: 2026-01-01T03:00:00+00:00.
    return moment.isoformat()


def _read_time(text: str) -> datetime:
    # .NET writes up to seven fraction digits; Python reads six.
    moment = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass
class ScheduleStatus:
    """``ScheduleStatus``: the last occurrence run, the next expected, when this was written."""

    last: datetime
    next: datetime
    last_updated: datetime

    def to_json(self) -> dict[str, str]:
        return {
            "Last": _dotnet_time(self.last),
            "Next": _dotnet_time(self.next),
            "LastUpdated": _dotnet_time(self.last_updated),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScheduleStatus:
        return cls(
            last=_read_time(data["Last"]),
            next=_read_time(data["Next"]),
            last_updated=_read_time(data["LastUpdated"]),
        )


class TimerState(Protocol):
    """Schedule statuses and listener locks of one host ID."""

    async def read_status(self, function: str) -> ScheduleStatus | None:
        """The recorded status, or None when the function never recorded one."""
        ...

    async def write_status(self, function: str, status: ScheduleStatus) -> None:
        """Record the status (best effort: a failure is logged, as the host does)."""
        ...

    async def try_lock(self, function: str) -> bool:
        """Take the function's listener lock; False when another host holds it."""
        ...

    async def renew(self, function: str) -> bool:
        """Keep the lock; False when it was lost."""
        ...

    async def release(self, function: str) -> None: ...

    async def close(self) -> None: ...


class MemoryTimerState:
    """Statuses and locks in memory; share one between test hosts to make them compete."""

    def __init__(self) -> None:
        self.statuses: dict[str, dict[str, str]] = {}
        self.holders: dict[str, object] = {}

    def for_host(self) -> _MemoryHostState:
        """A view for one host: its own identity as a lock holder."""
        return _MemoryHostState(self)


class _MemoryHostState:
    def __init__(self, shared: MemoryTimerState) -> None:
        self._shared = shared

    async def read_status(self, function: str) -> ScheduleStatus | None:
        saved = self._shared.statuses.get(function)
        return None if saved is None else ScheduleStatus.from_json(saved)

    async def write_status(self, function: str, status: ScheduleStatus) -> None:
        self._shared.statuses[function] = status.to_json()

    async def try_lock(self, function: str) -> bool:
        holder = self._shared.holders.setdefault(function, self)
        return holder is self

    async def renew(self, function: str) -> bool:
        return self._shared.holders.get(function) is self

    async def release(self, function: str) -> None:
        if self._shared.holders.get(function) is self:
            del self._shared.holders[function]

    async def close(self) -> None:
        for function in [f for f, holder in self._shared.holders.items() if holder is self]:
            del self._shared.holders[function]


class BlobTimerState:
    """Statuses and locks in ``azure-webjobs-hosts`` of a storage account (Azurite or Azure).

    Parameters
    ----------
    connection
        The host's storage account (``AzureWebJobsStorage``).
    host_id
        The host ID (``default_host_id``): the folder of this host's statuses and locks.
    """

    def __init__(self, connection: StorageConnection, host_id: str) -> None:
        self.host_id = host_id
        self._credential = connection.new_credential(asynchronous=True)
        self._service = service_client(
            connection, "blob", BlobServiceClient, credential=self._credential
        )
        self._container = self._service.get_container_client(HOSTS_CONTAINER)
        self._leases: dict[str, BlobLeaseClient] = {}
        self._created = False

    async def _ensure_container(self) -> None:
        if self._created:
            return
        try:
            await self._container.create_container()
        except ResourceExistsError:
            pass
        self._created = True

    async def read_status(self, function: str) -> ScheduleStatus | None:
        blob = self._container.get_blob_client(status_blob(self.host_id, function))
        try:
            text = await (await blob.download_blob()).readall()
        except ResourceNotFoundError:
            return None
        return ScheduleStatus.from_json(json.loads(text))

    async def write_status(self, function: str, status: ScheduleStatus) -> None:
        try:
            await self._ensure_container()
            blob = self._container.get_blob_client(status_blob(self.host_id, function))
            await blob.upload_blob(json.dumps(status.to_json()), overwrite=True)
        except Exception:
            log.exception("Function '%s' failed to update the timer trigger status.", function)

    async def try_lock(self, function: str) -> bool:
        await self._ensure_container()
        blob = self._container.get_blob_client(lock_blob(self.host_id, function))
        try:
            await blob.upload_blob(b"", overwrite=False)
        except ResourceExistsError:
            pass  # the lock blob outlives its leases
        except HttpResponseError as exc:
            if exc.status_code != 412:  # leased by another host: it exists
                raise
        lease = BlobLeaseClient(blob)
        try:
            await lease.acquire(lease_duration=LISTENER_LEASE_SECONDS)
        except HttpResponseError as exc:
            if exc.status_code == 409:  # LeaseAlreadyPresent
                return False
            raise
        self._leases[function] = lease
        return True

    async def renew(self, function: str) -> bool:
        lease = self._leases.get(function)
        if lease is None:
            return False
        try:
            await lease.renew()
        except HttpResponseError:
            log.warning("Lost the listener lock of timer function '%s'.", function)
            del self._leases[function]
            return False
        return True

    async def release(self, function: str) -> None:
        lease = self._leases.pop(function, None)
        if lease is not None:
            try:
                await lease.release()
            except HttpResponseError:
                pass  # expired already: nothing to give back

    async def close(self) -> None:
        for function in list(self._leases):
            await self.release(function)
        await self._service.close()
        if self._credential is not None:
            await self._credential.close()
