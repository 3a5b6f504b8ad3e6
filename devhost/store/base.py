"""The storage interface of the local host.

The engine keeps running instances in memory and persists them through a ``Store``. Two
implementations exist: ``MemoryStore`` (tests, the in-process test engine) and ``AzureStore``
(Azure Storage or Azurite, laid out like DurableTask.AzureStorage so the data can be read with
Azure Storage Explorer and the tools people already use).

Durability contract (what crash safety rests on)
-----------------------------------------------
* ``put_message`` returns only once the message is durable. The engine calls it before it
  acknowledges a client (a 202 for a start, an event, a terminate, an entity signal).
* ``write_row`` returns only once the row is durable. A client's start with a generated
  instance ID is recorded as the instance's Pending row (as DTFx writes it) before the 202; the
  next start runs an instance whose row is Pending and which has no history yet.
* ``write_checkpoint`` persists one instance's history and row. History rows are written first
  and the sentinel row (holding ``HistoryCount`` and ``InboxWatermark``) last, so a crash in the
  middle leaves the previous checkpoint readable: rows at or past ``HistoryCount`` are ignored
  when reading.
* ``read_messages`` (at start-up) returns every message not yet deleted, also those that a
  reader killed while it read left hidden for a while (it waits for them): a restarted host
  must see every acknowledged message before it runs anything.
* ``delete_messages`` is called only after the checkpoint that consumed those messages.
  A message redelivered after a crash is recognised by its ``msg_id`` (compared with the
  instance's ``inbox_watermark``) and dropped.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Runtime status names, as stored in the Instances table and shown by the status API, in the
# order of the OrchestrationStatus enum (the index is the number; Enum.TryParse takes either).
RUNTIME_STATUS_NAMES = (
    "Running",
    "Completed",
    "ContinuedAsNew",
    "Failed",
    "Canceled",
    "Terminated",
    "Pending",
    "Suspended",
)
TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
RUNNING_STATUSES = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})


@dataclass
class InstanceRow:
    """One row of the Instances table (one per orchestration or entity instance).

    ``input``, ``output`` and ``custom_status`` hold JSON text exactly as the real host stores
    it (``input`` is usually a JSON *string literal*, see the protocol notes §2.6).
    Entities are instances named ``@name@key``; their ``input`` holds the entity's scheduler
    state JSON.
    """

    instance_id: str
    name: str
    execution_id: str
    runtime_status: str
    created_time: datetime
    last_updated_time: datetime
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    completed_time: datetime | None = None
    version: str = ""
    generation: int = 0
    parent_instance_id: str | None = None


@dataclass
class Checkpoint:
    """What ``write_checkpoint`` persists for one instance.

    ``history`` is the whole history of the current execution, as a list of event dicts with
    the DTFx field names (``EventType`` as an int, ``EventId``, ``IsPlayed``, ``Timestamp`` as an
    ISO-8601 string, ...). ``persisted_count`` events of it are already in the store for this
    ``execution_id``; the store writes the rest. When ``execution_id`` differs from the stored
    sentinel's (continue-as-new, restart), the store replaces the old execution's rows.
    ``stored_rows``: no history row at or past this ordinal is stored, unless an earlier
    sending of this same write stored it (None: not known); the store may insert those rows
    instead of replacing them.
    ``opening``: with a new execution's first write, the checkpoint of an earlier state of
    that execution (its opening events, the watermark and row as they were then). A store that
    cannot replace the stored execution's rows in one atomic step writes ``opening`` first, in
    one, then the rest: a crash between steps must leave one execution readable whole, not the
    stored one's rows partly overwritten by the new one's (which reads as no history at all).
    (The Azure store first tries to write the rows below ``stored_rows`` with the sentinel and
    the rest before it; ``opening`` is its way when those do not fit one transaction.)
    ``with_row``: False writes the history and the sentinel only, the instance row being left
    for a later checkpoint (the row as stored then lags the history: a state a crash between
    a checkpoint's two writes leaves too, which loading repairs).
    """

    row: InstanceRow
    history: list[dict[str, Any]]
    persisted_count: int
    inbox_watermark: str = ""
    stored_rows: int | None = None
    opening: Checkpoint | None = None
    with_row: bool = True


@dataclass
class StoredHistory:
    """The history of an instance's current execution, as read back from the store."""

    execution_id: str
    events: list[dict[str, Any]]
    inbox_watermark: str = ""
    # Every history row the store holds besides the sentinel, when they are the ordinals
    # below this number (none missing, none of another shape); None when not known.
    rows: int | None = None


@dataclass
class InstanceQuery:
    """Filters of the instance list (``GET /runtime/webhooks/durabletask/instances``)."""

    runtime_status: list[str] = field(default_factory=list)
    created_from: datetime | None = None
    created_to: datetime | None = None
    instance_id_prefix: str | None = None
    name: str | None = None


@dataclass
class StoredMessage:
    """A durable message addressed to an instance, as ``put_message`` stored it.

    ``body`` is a JSON-serialisable dict (the engine decides its shape); ``receipt`` is what
    ``delete_messages`` needs to remove it (set by the store when reading or writing).
    """

    msg_id: str
    instance_id: str
    body: dict[str, Any]
    receipt: Any = None


class Store(abc.ABC):
    """Persistence for one task hub."""

    task_hub: str

    @abc.abstractmethod
    async def open(self) -> None:
        """Create the task hub's tables, queues and containers if missing."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""

    # -- durable inbox (client-originated messages) -------------------------------------------

    @abc.abstractmethod
    async def put_message(self, message: StoredMessage) -> None:
        """Persist ``message`` durably and set its ``receipt``."""

    @abc.abstractmethod
    async def read_messages(self) -> list[StoredMessage]:
        """Every message not yet deleted, oldest first, one per ``msg_id`` (used once at
        start-up), including any that an earlier reader left hidden.

        A send whose answer was lost is sent again (by the SDK or ``RetryingStore``), which can
        store a second copy; the store deletes such copies and returns the message once.
        """

    @abc.abstractmethod
    async def delete_messages(self, messages: list[StoredMessage]) -> None:
        """Delete messages whose effects are checkpointed. Missing ones are ignored."""

    # -- instances and histories ----------------------------------------------------------------

    @abc.abstractmethod
    async def write_row(self, row: InstanceRow) -> None:
        """Persist one instance row alone (a client's start, as its Pending row)."""

    @abc.abstractmethod
    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Persist new history events (sentinel last), then the instance row."""

    @abc.abstractmethod
    async def read_instance(self, instance_id: str) -> InstanceRow | None:
        """The instance row, or None."""

    @abc.abstractmethod
    async def read_history(self, instance_id: str) -> StoredHistory | None:
        """The current execution's history (only the first ``HistoryCount`` rows), or None."""

    @abc.abstractmethod
    async def query_instances(
        self, query: InstanceQuery, top: int, continuation: str | None
    ) -> tuple[list[InstanceRow], str | None]:
        """One page of instance rows matching ``query`` and the token of the next page."""

    @abc.abstractmethod
    async def delete_instance(self, instance_id: str, history_rows: int | None = None) -> bool:
        """Purge the instance row, its history and its large-payload blobs. True if it existed.

        ``history_rows``, when the caller knows it: the instance's history is the sentinel and
        the rows of ordinals below it, nothing else (rows of every execution, a longer earlier
        one's included). A store may then delete them by key instead of listing them first;
        a row found missing makes it list them after all."""

    @abc.abstractmethod
    async def count_operations(self) -> int:
        """Storage requests made so far (for the benchmark's operations-per-orchestration)."""

    def is_down(self) -> bool:
        """Whether storage is known to be away (an outage under way); only a store that
        retries (``RetryingStore``) can tell, the others never say so."""
        return False


def split_copies(messages: list[StoredMessage]) -> tuple[list[StoredMessage], list[StoredMessage]]:
    """The first message of each ``msg_id`` (in order), and the copies after it."""
    seen: set[str] = set()
    first: list[StoredMessage] = []
    copies: list[StoredMessage] = []
    for message in messages:
        (copies if message.msg_id in seen else first).append(message)
        seen.add(message.msg_id)
    return first, copies
