"""In-memory ``Store`` for the test engine and the contract tests.

It mirrors the Azure layout where behaviour depends on it: a history is a list of rows plus
the sentinel's ``HistoryCount``, so rows past the count (a half-written checkpoint) can exist
and are ignored the same way. Everything stored or handed out is a deep copy, so a caller that
mutates its own objects cannot change stored state.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from devhost.store.base import (
    Checkpoint,
    InstanceQuery,
    InstanceRow,
    Store,
    StoredHistory,
    StoredMessage,
    split_copies,
)


@dataclass
class MemoryHistory:
    """The stored history of one instance: its rows and the sentinel's fields."""

    execution_id: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    history_count: int = 0
    inbox_watermark: str = ""


def _matches(row: InstanceRow, query: InstanceQuery) -> bool:
    """The Azure store's filter, evaluated in Python (bounds inclusive, as DTFx's)."""
    return (
        (not query.runtime_status or row.runtime_status in query.runtime_status)
        and (query.created_from is None or row.created_time >= query.created_from)
        and (query.created_to is None or row.created_time <= query.created_to)
        and (not query.instance_id_prefix or row.instance_id.startswith(query.instance_id_prefix))
        and (query.name is None or row.name == query.name)
    )


class MemoryStore(Store):
    """A ``Store`` kept in dictionaries; ``count_operations`` counts calls.

    Parameters
    ----------
    task_hub
        The task hub name (reported only).

    Attributes
    ----------
    instances, histories
        The stored state by instance ID, open to tests that need to inspect it or to
        simulate a half-written checkpoint.
    """

    def __init__(self, task_hub: str = "TestHubName") -> None:
        self.task_hub = task_hub
        self.instances: dict[str, InstanceRow] = {}
        self.histories: dict[str, MemoryHistory] = {}
        # A message's receipt is its key here; keys are never reused, so a receipt of a
        # deleted message deletes nothing.
        self._messages: dict[int, StoredMessage] = {}
        self._keys = itertools.count(1)
        self._operations = 0

    async def open(self) -> None:
        """Nothing to create."""

    async def close(self) -> None:
        """Nothing to release."""

    async def count_operations(self) -> int:
        """Store calls made so far (one per call, whatever it does)."""
        return self._operations

    # -- durable inbox --------------------------------------------------------------------------

    async def put_message(self, message: StoredMessage) -> None:
        """Keep a copy of ``message`` and set its receipt."""
        self._operations += 1
        message.receipt = next(self._keys)
        self._messages[message.receipt] = copy.deepcopy(message)

    async def read_messages(self) -> list[StoredMessage]:
        """Copies of every stored message, oldest ``msg_id`` first, once each."""
        self._operations += 1
        messages = [copy.deepcopy(message) for message in self._messages.values()]
        messages.sort(key=lambda message: message.msg_id)
        messages, extra = split_copies(messages)
        for message in extra:
            del self._messages[message.receipt]
        return messages

    async def delete_messages(self, messages: list[StoredMessage]) -> None:
        """Forget the messages; unknown or already deleted ones are ignored."""
        self._operations += 1
        for message in messages:
            self._messages.pop(message.receipt, None)

    # -- instances and histories ----------------------------------------------------------------

    async def write_row(self, row: InstanceRow) -> None:
        """Store the instance row (a copy)."""
        self._operations += 1
        self.instances[row.instance_id] = _copy_row(row)

    async def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store the new events and (``with_row``) the instance row (copies)."""
        self._operations += 1
        row = checkpoint.row
        stored = self.histories.get(row.instance_id)
        if stored is None or stored.execution_id != row.execution_id:
            # A new execution starts from an empty row list, as its rows replace the old
            # ones in the table.
            stored = MemoryHistory(execution_id=row.execution_id)
        start = checkpoint.persisted_count
        new_rows = [_copy_event(event) for event in checkpoint.history[start:]]
        stored.rows[start : start + len(new_rows)] = new_rows
        stored.history_count = len(checkpoint.history)
        stored.inbox_watermark = checkpoint.inbox_watermark
        self.histories[row.instance_id] = stored
        if checkpoint.with_row:
            self.instances[row.instance_id] = _copy_row(row)

    async def read_instance(self, instance_id: str) -> InstanceRow | None:
        """A copy of the instance row, or None."""
        self._operations += 1
        row = self.instances.get(instance_id)
        return None if row is None else _copy_row(row)

    async def read_history(self, instance_id: str) -> StoredHistory | None:
        """A copy of the first ``history_count`` rows, or None."""
        self._operations += 1
        stored = self.histories.get(instance_id)
        if stored is None:
            return None
        return StoredHistory(
            execution_id=stored.execution_id,
            events=copy.deepcopy(stored.rows[: stored.history_count]),
            inbox_watermark=stored.inbox_watermark,
        )

    async def query_instances(
        self, query: InstanceQuery, top: int, continuation: str | None
    ) -> tuple[list[InstanceRow], str | None]:
        """One page of matching rows in instance-ID order; the token names the last ID."""
        self._operations += 1
        after = _decode_token(continuation)
        ids = sorted(
            instance_id
            for instance_id, row in self.instances.items()
            if (after is None or instance_id > after) and _matches(row, query)
        )
        page = ids[:top]
        token = _encode_token(page[-1]) if len(ids) > top else None
        return [_copy_row(self.instances[instance_id]) for instance_id in page], token

    async def delete_instance(self, instance_id: str, history_rows: int | None = None) -> bool:
        """Forget the instance row and history (all of it, whatever ``history_rows`` says).
        True if either existed."""
        self._operations += 1
        had_row = self.instances.pop(instance_id, None) is not None
        had_history = self.histories.pop(instance_id, None) is not None
        return had_row or had_history


def _copy_row(row: InstanceRow) -> InstanceRow:
    """A copy of an instance row. Its fields are immutable values (text, times, numbers), so
    a new row with the same fields is a deep copy, at a fifth of ``copy.deepcopy``'s cost (the
    test host writes a row with each checkpoint)."""
    return dataclasses.replace(row)


def _copy_event(value: Any) -> Any:
    """A copy of a history event, which holds JSON values only: about a third of what
    ``copy.deepcopy`` costs (which looks up a copier and tracks cycles for every value), and
    the test host writes every event it records."""
    if isinstance(value, dict):
        # Most fields are text or numbers: they are kept as they are without a call each.
        return {
            key: item if type(item) in _IMMUTABLE else _copy_event(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [item if type(item) in _IMMUTABLE else _copy_event(item) for item in value]
    return value  # str, int, float, bool, None: immutable


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def _encode_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode()


def _decode_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        after: str = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"invalid continuation token {token!r}") from error
    return after
