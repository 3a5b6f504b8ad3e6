"""How a task hub is laid out in an Azure Storage account (DurableTask.AzureStorage, §8).

Pure functions, no I/O: connection strings, key sanitation, the control-queue hash, and the
encoding of history events and instance rows as table entities. ``devhost.store.azure`` does
the requests.

Round-trip encoding of history events (the engine gets back exactly the dict it wrote):

* ``EventType`` and ``OrchestrationStatus`` are stored as enum names, read back as ints.
* ``Timestamp`` is stored as ``_Timestamp`` (``Timestamp`` is the table's system column) and
  kept as the engine's string: a table DateTime would not give back the same text.
* dict and list values are stored as JSON text; their column names are listed in
  ``_JsonProperties``. Tables cannot store null, so None values are left out and their names
  listed in ``_NullProperties`` (the SDK needs e.g. ``Result: null`` to be present).
* ints outside 32 bits are stored as Edm.Int64.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
from collections.abc import Container, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

from azure.data.tables import EdmType, EntityProperty

from devhost.storage_settings import development_storage_connection_string
from devhost.store.base import RUNTIME_STATUS_NAMES, InstanceQuery, InstanceRow

# -- connection strings ------------------------------------------------------------------------


def is_development_storage(conn_str: str) -> bool:
    """Whether ``conn_str`` asks for the local emulator (``UseDevelopmentStorage=true``).

    Parameters
    ----------
    conn_str
        An Azure Storage connection string, as found in ``AzureWebJobsStorage``.

    Returns
    -------
    bool
        True for ``UseDevelopmentStorage=true`` (any case, any spacing, optional trailing
        ``;``); explicit account strings are False even when they point at Azurite.
    """
    for part in conn_str.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "usedevelopmentstorage":
            return value.strip().lower() == "true"
    return False


def expand_connection_string(conn_str: str) -> str:
    """Replace ``UseDevelopmentStorage=true`` by Azurite's explicit connection string.

    The three SDKs do not agree on that shorthand, so every client is built from the
    expanded form. Other strings are returned unchanged.
    """
    if is_development_storage(conn_str):
        return development_storage_connection_string()
    return conn_str


# -- keys and partitions -----------------------------------------------------------------------

_KEY_ESCAPES = {"^": "^^", "/": "^0", "\\": "^1", "#": "^2", "?": "^3"}
_KEY_UNESCAPES = {"^": "^", "0": "/", "1": "\\", "2": "#", "3": "?"}
_KEY_NEEDS_ESCAPE = re.compile(r"[\^/\\#?\x00-\x1f\x7f-\x9f]")
# DTFx shifts control characters by this offset ('À') into a range keys may hold.
_KEY_CONTROL_OFFSET = 0xC0


def sanitize_key(key: str) -> str:
    """Escape what a table key cannot hold, as DTFx's ``KeySanitation.EscapePartitionKey``."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return _KEY_ESCAPES.get(char) or "^" + chr(ord(char) + _KEY_CONTROL_OFFSET)

    return _KEY_NEEDS_ESCAPE.sub(escape, key)


def unsanitize_key(key: str) -> str:
    """Invert :func:`sanitize_key`."""
    if "^" not in key:
        return key
    out: list[str] = []
    chars = iter(key)
    for char in chars:
        if char != "^":
            out.append(char)
            continue
        escaped = next(chars, "")
        if escaped in _KEY_UNESCAPES:
            out.append(_KEY_UNESCAPES[escaped])
        elif escaped and ord(escaped) >= _KEY_CONTROL_OFFSET:
            out.append(chr(ord(escaped) - _KEY_CONTROL_OFFSET))
        else:
            out.append(escaped)
    return "".join(out)


def control_queue_index(instance_id: str, partition_count: int = 4) -> int:
    """The control-queue partition of an instance: FNV-1a (32-bit, UTF-8) mod partition count.

    The same hash as DTFx's ``Fnv1aHashHelper.ComputeHash(instanceId)``, so an instance lands
    on the queue the real host would use.
    """
    value = 0x811C9DC5
    for byte in instance_id.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value % partition_count


def history_row_key(ordinal: int) -> str:
    """The RowKey of the ``ordinal``-th event of an execution (16 hex digits, as DTFx)."""
    return f"{ordinal:016X}"


SENTINEL_ROW_KEY = "sentinel"

# -- enums stored by name -----------------------------------------------------------------------

EVENT_TYPE_NAMES = (
    "ExecutionStarted",
    "ExecutionCompleted",
    "ExecutionFailed",
    "ExecutionTerminated",
    "TaskScheduled",
    "TaskCompleted",
    "TaskFailed",
    "SubOrchestrationInstanceCreated",
    "SubOrchestrationInstanceCompleted",
    "SubOrchestrationInstanceFailed",
    "TimerCreated",
    "TimerFired",
    "OrchestratorStarted",
    "OrchestratorCompleted",
    "EventSent",
    "EventRaised",
    "ContinueAsNew",
    "GenericEvent",
    "HistoryState",
    "ExecutionSuspended",
    "ExecutionResumed",
)
ORCHESTRATION_STATUS_NAMES = RUNTIME_STATUS_NAMES
_ENUM_COLUMNS: dict[str, tuple[str, ...]] = {
    "EventType": EVENT_TYPE_NAMES,
    "OrchestrationStatus": ORCHESTRATION_STATUS_NAMES,
}
_ENUM_VALUES: dict[str, dict[str, int]] = {
    column: {name: value for value, name in enumerate(names)}
    for column, names in _ENUM_COLUMNS.items()
}

# -- limits -------------------------------------------------------------------------------------

# A string property holds at most 64 KiB, i.e. 32K UTF-16 code units.
MAX_STRING_UNITS = 32 * 1024
# An entity holds at most 1 MiB; keep room for the system properties.
MAX_ENTITY_BYTES = 1024 * 1024 - 16 * 1024
# An entity-group transaction carries at most 100 operations and 4 MiB of request body.
MAX_TRANSACTION_OPERATIONS = 100
_MAX_TRANSACTION_PAYLOAD = 3 * 1024 * 1024 + 512 * 1024
# Per-operation multipart framing in a transaction body, generously rounded up.
_TRANSACTION_OPERATION_OVERHEAD = 1024

# A column holding the blob name of a value moved out of the table ends with this.
BLOB_SUFFIX = "BlobName"
_JSON_PROPERTIES = "_JsonProperties"
_NULL_PROPERTIES = "_NullProperties"
# Columns of a history row that are not event fields (never moved to a blob either).
_HISTORY_COLUMNS = frozenset(
    {"PartitionKey", "RowKey", "ExecutionId", _JSON_PROPERTIES, _NULL_PROPERTIES}
)

# -- sizes --------------------------------------------------------------------------------------


def _utf16_units(text: str) -> int:
    # str.isascii() is O(1) in CPython; only non-ASCII text pays for an encode.
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def _value_size(value: Any) -> int:
    """Storage size of a property value (the table service's accounting)."""
    if isinstance(value, str):
        return 4 + 2 * _utf16_units(value)
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 4
    return 8  # Int64 tuples, doubles, datetimes


def _entity_size(entity: dict[str, Any]) -> int:
    return 4 + sum(8 + 2 * len(name) + _value_size(value) for name, value in entity.items())


def _payload_size(entity: dict[str, Any]) -> int:
    """Upper bound of an entity's JSON in a transaction body (an ASCII JSON escape at most
    doubles a character; a non-ASCII UTF-16 unit becomes a 6-byte \\uXXXX escape)."""
    size = _TRANSACTION_OPERATION_OVERHEAD + 40 * len(entity) + sum(map(len, entity))
    for value in entity.values():
        if isinstance(value, str):
            size += 2 * len(value) if value.isascii() else 6 * _utf16_units(value)
    return size


def too_large_columns(entity: dict[str, Any]) -> list[str]:
    """The string columns to move to blobs so that ``entity`` fits the table's limits.

    Every string over 32K UTF-16 units; then, if the entity is still over 1 MiB, the largest
    remaining strings until it fits.
    """
    # Fast path for the usual row: if its names and strings hold at most 16K characters in
    # all, no string is over 32K UTF-16 units and the whole is under 128 KiB as stored.
    characters = 0
    for name, value in entity.items():
        characters += len(name) + len(value) if isinstance(value, str) else len(name)
    if characters <= MAX_STRING_UNITS // 2 and len(entity) <= 1024:
        return []
    # A string of at most 16K characters is at most 32K UTF-16 units: no need to measure.
    large = [
        column
        for column, value in entity.items()
        if isinstance(value, str)
        and len(value) > MAX_STRING_UNITS // 2
        and _utf16_units(value) > MAX_STRING_UNITS
    ]
    size = _entity_size(entity) - sum(_value_size(entity[column]) for column in large)
    if size > MAX_ENTITY_BYTES:
        candidates = sorted(
            (
                column
                for column, value in entity.items()
                if isinstance(value, str) and column not in large and column not in _HISTORY_COLUMNS
            ),
            key=lambda column: _value_size(entity[column]),
            reverse=True,
        )
        for column in candidates:
            if size <= MAX_ENTITY_BYTES:
                break
            large.append(column)
            size -= _value_size(entity[column])
    return large


class TableRow(NamedTuple):
    """An entity to write and its JSON text (``entity_body``), made once per write."""

    entity: dict[str, Any]
    body: str


def table_row(entity: dict[str, Any]) -> TableRow:
    """``entity`` with its JSON text."""
    return TableRow(entity, entity_body(entity))


def fits_as_is(row: TableRow) -> bool:
    """Whether ``too_large_columns(row.entity)`` is surely empty, judged from the row's text.

    The JSON text holds every name and string of the entity, each character as at least one
    character, so a text of at most 16K characters is that function's own fast path (its
    names and strings hold at most 16K characters) without counting them again.
    """
    return len(row.body) <= MAX_STRING_UNITS // 2 and len(row.entity) <= 1024


def _payload_bound(row: TableRow) -> int:
    """At least ``_payload_size(row.entity)``: the JSON text holds every name, and every
    string with each UTF-16 unit as at least one character, so six times its length covers
    what that bound allows for the names and the strings' escapes."""
    return _TRANSACTION_OPERATION_OVERHEAD + 40 * len(row.entity) + 6 * len(row.body)


def transactions(rows: list[TableRow]) -> Iterator[list[TableRow]]:
    """Split rows, in order, into entity-group transactions within the count and size limits."""
    # Usually they all fit one: when even the looser bound stays within the limit, so does
    # every sum below, and the split is the same without measuring each string.
    if (
        0 < len(rows) <= MAX_TRANSACTION_OPERATIONS
        and sum(map(_payload_bound, rows)) <= _MAX_TRANSACTION_PAYLOAD
    ):
        yield rows
        return
    batch: list[TableRow] = []
    payload = 0
    for row in rows:
        size = _payload_size(row.entity)
        if batch and (
            len(batch) == MAX_TRANSACTION_OPERATIONS or payload + size > _MAX_TRANSACTION_PAYLOAD
        ):
            yield batch
            batch, payload = [], 0
        batch.append(row)
        payload += size
    if batch:
        yield batch


# -- entity-group transactions ---------------------------------------------------------------
#
# The SDK builds and parses a transaction's multipart body with the standard library's email
# package, about 10 ms of CPU for five rows; the engine writes one per checkpoint, so the
# store writes the body itself (same wire format, see the Tables REST "Performing entity group
# transactions") and leaves only the sending to the SDK.


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The text of ``json.dumps(value, separators=(",", ":"))`` (ASCII only). A JSONEncoder's
# ``encode`` builds the C encoder anew on every call and gives it a dict to look for cycles
# in; that was a quarter of a history row's JSON. This is the same C encoder, made once and
# without the cycle check: what it encodes came from JSON (events, rows) and holds no cycle.
# Equal to ``json.dumps``: tests/devhost/test_store_layout_text.py.
_c_encoder = json.encoder.c_make_encoder  # type: ignore[attr-defined]
_encode = (
    _c_encoder(
        None, _not_json, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    if _c_encoder is not None
    else None  # an interpreter without the C accelerator
)
_slow_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _compact_json(value: Any) -> str:
    if _encode is None:
        return _slow_compact_json(value)
    return "".join(_encode(value, 0))


def table_time(value: datetime) -> str:
    """``value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")`` (the time as written, whatever its zone) in
    a fifth of the CPU: ``strftime`` goes through the C library, about 10 us each on a loaded
    machine, four to seven times per HelloSequence5. ``isoformat`` writes the same digits,
    but pads years below 1000, which ``strftime`` does not (tests/devhost/
    test_store_layout_text.py compares the two)."""
    if value.year < 1000:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.isoformat(timespec="microseconds")[:26] + "Z"


def _odata_properties(entity: dict[str, Any]) -> dict[str, Any]:
    """An entity's JSON body, with ``@odata.type`` where JSON alone would lose the type."""
    body: dict[str, Any] = {}
    for name, value in entity.items():
        kind = type(value)
        if kind is str or kind is int or kind is bool:  # most columns
            body[name] = value
        elif isinstance(value, tuple):  # (int, EdmType.INT64): Int64 travels as a string
            body[name] = str(value[0])
            body[name + "@odata.type"] = "Edm.Int64"
        elif isinstance(value, datetime):
            value = value.astimezone(UTC) if value.tzinfo else value
            body[name] = table_time(value)
            body[name + "@odata.type"] = "Edm.DateTime"
        elif isinstance(value, float):
            body[name] = value if math.isfinite(value) else str(value).replace("inf", "Infinity")
            body[name + "@odata.type"] = "Edm.Double"
        else:  # str, bool, int32
            body[name] = value
    return body


def key_literal(key: str) -> str:
    """A key as it appears in an entity's address (``entity_address``)."""
    if key.isascii() and key.isalnum():  # history row keys, most instance ids: as they are
        return key
    return quote(key.replace("'", "''"), safe="")


def entity_body(entity: dict[str, Any]) -> str:
    """An entity as the JSON text of an insert or replace (ASCII only: ``json.dumps`` escapes
    the rest, so characters and bytes agree for Content-Length)."""
    for value in entity.values():
        kind = type(value)
        if kind is not str and kind is not int and kind is not bool:
            return _compact_json(_odata_properties(entity))
    # Most history rows hold only strings, ints and booleans: their JSON is the entity's.
    return _compact_json(entity)


def entity_address(account_url: str, table: str, partition_key: str, row_key: str) -> str:
    """The URL of one entity: ``{table}(PartitionKey='...',RowKey='...')``."""
    return (
        f"{account_url.rstrip('/')}/{table}(PartitionKey='{key_literal(partition_key)}',"
        f"RowKey='{key_literal(row_key)}')"
    )


def _transaction(operations: list[str]) -> tuple[str, bytes]:
    """The content type and body of an entity-group transaction of ``operations`` (each an
    HTTP request's text: request line, headers, blank line, body)."""
    batch = f"batch_{uuid.uuid4()}"
    changeset = f"changeset_{uuid.uuid4()}"
    parts = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"]
    for index, operation in enumerate(operations):
        parts.append(
            f"--{changeset}\r\n"
            "Content-Type: application/http\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            f"Content-ID: {index}\r\n\r\n"
            f"{operation}"
        )
    parts.append(f"--{changeset}--\r\n--{batch}--\r\n")
    return f"multipart/mixed; boundary={batch}", "".join(parts).encode("ascii")


def write_transaction(
    account_url: str,
    table: str,
    rows: list[TableRow],
    inserted: Container[str] = (),
) -> tuple[str, bytes]:
    """The content type and body of a transaction writing ``rows``: an insert of each
    whose RowKey is in ``inserted`` (it must not exist yet), a replace-or-insert of the rest.

    An insert is what the SDK's ``create`` operation sends, plus ``Prefer: return-no-content``
    as the .NET SDK's transactions send it (the answer then carries no copy of the row).
    On Azure Table storage both cost the same; Azurite looks an upserted row up twice (once to
    choose between insert and replace, once more to insert) and an inserted one once, and each
    lookup scans every row sharing its RowKey, one per instance in the hub
    (docs/benchmarks.md, "Azurite grows slower as the task hub fills").

    Parameters
    ----------
    account_url
        The table service URL (``TableClient.url``).
    table
        The table name.
    rows
        At most 100 entities of one partition, with their text.
    inserted
        RowKeys of the entities known not to be stored.
    """
    operations = []
    base = account_url.rstrip("/")
    for entity, body in rows:
        if entity["RowKey"] in inserted:
            request = f"POST {base}/{table} HTTP/1.1\r\nPrefer: return-no-content\r\n"
        else:
            address = entity_address(account_url, table, entity["PartitionKey"], entity["RowKey"])
            request = f"PUT {address} HTTP/1.1\r\n"
        operations.append(
            f"{request}"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Accept: application/json;odata=nometadata\r\n"
            "DataServiceVersion: 3.0\r\n\r\n"
            f"{body}\r\n"
        )
    return _transaction(operations)


def delete_transaction(
    account_url: str, table: str, keys: list[tuple[str, str]]
) -> tuple[str, bytes]:
    """The content type and body of a transaction deleting the entities ``keys`` names
    (``(PartitionKey, RowKey)`` pairs, at most 100, one partition), whatever their ETag: what
    the SDK's ``submit_transaction`` sends for ``("delete", ...)`` operations, built without
    its multipart serializer (the ``email`` package: about 14 ms of CPU for one purge)."""
    return _transaction(
        [
            f"DELETE {entity_address(account_url, table, partition_key, row_key)} HTTP/1.1\r\n"
            "Accept: application/json;odata=nometadata\r\n"
            "If-Match: *\r\n"
            "DataServiceVersion: 3.0\r\n\r\n"
            for partition_key, row_key in keys
        ]
    )


# The status of each part: what ``^HTTP/1\.1 (\d{3})`` finds in MULTILINE mode (at the start
# and after each "\n"). A pattern that starts with "^" is tried at every character: 110 us
# on the 15 KB answer to a HelloSequence5's checkpoint, against 16 us for one that starts
# with a literal (tests/devhost/test_store_layout_text.py compares the two).
_PART_STATUS = re.compile(r"\nHTTP/1\.1 (\d{3})")
_FIRST_PART_STATUS = re.compile(r"HTTP/1\.1 (\d{3})")


def _part_statuses(response_text: str) -> list[str]:
    first = _FIRST_PART_STATUS.match(response_text)
    statuses: list[str] = _PART_STATUS.findall(response_text)
    return [first.group(1), *statuses] if first else statuses


def transaction_error(response_text: str, operations: int) -> str | None:
    """Why a transaction's response reports a failure, or None if every operation succeeded.

    A failed changeset comes back as a single part carrying the error (its message starts
    with the index of the failing operation).
    """
    statuses = _part_statuses(response_text)
    if len(statuses) == operations and all(status.startswith("2") for status in statuses):
        return None
    detail = re.search(r'"value":\s*"([^"]*)', response_text)
    return f"statuses {statuses}: {detail.group(1) if detail else response_text[-500:]}"


# -- values -------------------------------------------------------------------------------------


def _table_int(value: int) -> int | tuple[int, EdmType]:
    # The SDK sends Python ints as Edm.Int32 and refuses larger ones unless typed.
    if -(2**31) <= value < 2**31:
        return value
    return (value, EdmType.INT64)


def from_table_value(value: Any) -> Any:
    """A property value as read from the SDK, as plain Python (int, aware UTC datetime...)."""
    if isinstance(value, EntityProperty):
        return value.value
    if isinstance(value, datetime):
        # The SDK returns a datetime subclass carrying the service's text; hand out a plain one.
        return datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=UTC,
        )
    return value


def event_to_entity(event: dict[str, Any]) -> dict[str, Any]:
    """The table columns of one history event (without the keys and ExecutionId).

    Raises
    ------
    ValueError
        A field collides with a storage column.
    TypeError
        A field holds something other than JSON values.
    """
    entity: dict[str, Any] = {}
    json_columns: list[str] = []
    null_columns: list[str] = []
    for key, value in event.items():
        if key in _HISTORY_COLUMNS or key == "_Timestamp":
            raise ValueError(f"history event field {key!r} collides with a storage column")
        column = "_Timestamp" if key == "Timestamp" else key
        kind = type(value)
        if kind is str or kind is bool:  # most fields; the checks below cover every type
            entity[column] = value
        elif value is None:
            null_columns.append(column)
        elif isinstance(value, bool | str | float):
            entity[column] = value
        elif isinstance(value, int):
            names = _ENUM_COLUMNS.get(column)
            entity[column] = (
                names[value] if names and 0 <= value < len(names) else _table_int(value)
            )
        elif isinstance(value, dict | list):
            entity[column] = _compact_json(value)
            json_columns.append(column)
        else:
            raise TypeError(f"history event field {key!r} has unsupported type {type(value)}")
    if json_columns:
        entity[_JSON_PROPERTIES] = ",".join(json_columns)
    if null_columns:
        entity[_NULL_PROPERTIES] = ",".join(null_columns)
    return entity


def entity_to_event(entity: dict[str, Any]) -> dict[str, Any]:
    """Invert :func:`event_to_entity` (blob columns already replaced by their text)."""
    json_columns = set(filter(None, entity.get(_JSON_PROPERTIES, "").split(",")))
    event: dict[str, Any] = {}
    for column, raw in entity.items():
        if column in _HISTORY_COLUMNS:
            continue
        value = from_table_value(raw)
        if column in json_columns:
            value = json.loads(value)
        elif column in _ENUM_VALUES and isinstance(value, str):
            value = _ENUM_VALUES[column].get(value, value)
        event["Timestamp" if column == "_Timestamp" else column] = value
    for column in filter(None, entity.get(_NULL_PROPERTIES, "").split(",")):
        event["Timestamp" if column == "_Timestamp" else column] = None
    return event


def instance_to_entity(row: InstanceRow, task_hub: str) -> dict[str, Any]:
    """The Instances-table entity of ``row`` (None values left out: tables cannot hold null)."""
    entity: dict[str, Any] = {
        "PartitionKey": sanitize_key(row.instance_id),
        "RowKey": "",
        "ExecutionId": row.execution_id,
        "Name": row.name,
        "Version": row.version,
        "RuntimeStatus": row.runtime_status,
        "CreatedTime": row.created_time,
        "LastUpdatedTime": row.last_updated_time,
        "Generation": _table_int(row.generation),
        "TaskHubName": task_hub,
    }
    optional = {
        "Input": row.input,
        "Output": row.output,
        "CustomStatus": row.custom_status,
        "CompletedTime": row.completed_time,
        "ParentInstanceId": row.parent_instance_id,
    }
    entity.update((name, value) for name, value in optional.items() if value is not None)
    return entity


def entity_to_instance(entity: dict[str, Any]) -> InstanceRow:
    """Invert :func:`instance_to_entity` (blob columns already replaced by their text)."""
    values = {name: from_table_value(value) for name, value in entity.items()}
    return InstanceRow(
        instance_id=unsanitize_key(values["PartitionKey"]),
        name=values.get("Name", ""),
        execution_id=values.get("ExecutionId", ""),
        runtime_status=values.get("RuntimeStatus", ""),
        created_time=values["CreatedTime"],
        last_updated_time=values.get("LastUpdatedTime", values["CreatedTime"]),
        input=values.get("Input"),
        output=values.get("Output"),
        custom_status=values.get("CustomStatus"),
        completed_time=values.get("CompletedTime"),
        version=values.get("Version", ""),
        generation=values.get("Generation", 0),
        parent_instance_id=values.get("ParentInstanceId"),
    )


# -- queries ------------------------------------------------------------------------------------


def odata_string(value: str) -> str:
    """``value`` as an OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def _odata_datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return "datetime'" + table_time(value) + "'"


def instance_filter(query: InstanceQuery) -> str:
    """The OData filter of an instance query (empty for "everything").

    Bounds are inclusive, as DTFx's ``OrchestrationInstanceStatusQueryCondition``.
    """
    conditions: list[str] = []
    if query.runtime_status:
        statuses = " or ".join(
            f"RuntimeStatus eq {odata_string(status)}" for status in query.runtime_status
        )
        conditions.append(f"({statuses})")
    if query.created_from is not None:
        conditions.append(f"CreatedTime ge {_odata_datetime(query.created_from)}")
    if query.created_to is not None:
        conditions.append(f"CreatedTime le {_odata_datetime(query.created_to)}")
    if query.instance_id_prefix:
        # Escaping works character by character, so the escaped ids starting with the escaped
        # prefix are exactly the ids starting with the prefix; the upper bound increments the
        # prefix's last character, as DTFx does.
        prefix = sanitize_key(query.instance_id_prefix)
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        conditions.append(
            f"PartitionKey ge {odata_string(prefix)} and PartitionKey lt {odata_string(upper)}"
        )
    if query.name is not None:
        conditions.append(f"Name eq {odata_string(query.name)}")
    return " and ".join(conditions)


def encode_token(token: Any) -> str | None:
    """The SDK's continuation token (a dict) as an opaque string, None for "no more"."""
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def decode_token(token: str | None) -> Any:
    """Invert :func:`encode_token`.

    Raises
    ------
    ValueError
        ``token`` was not made by :func:`encode_token`.
    """
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"invalid continuation token {token!r}") from error
