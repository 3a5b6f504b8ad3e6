"""The one ID grammar: what every identifier a caller names must look like before it is used.

Grammar (ABNF, RFC 5234; ``ALPHA`` and ``DIGIT`` are ASCII only)::

    id        = id-start *id-char         ; at most the kind's length, see below
    id-start  = ALPHA / DIGIT
    id-char   = ALPHA / DIGIT / "_" / "." / ":" / "-"
    blob-name = id *( "/" id )            ; at most 400 characters

An ID is compared as given: it is never trimmed, case-folded, percent-decoded again or
Unicode-normalised, so the text that was checked is the text that is used.

Why these rules:

* Every character is an RFC 3986 ``pchar`` that needs no percent-encoding, so an ID pasted
  into a URL path (the durable SDK builds its management URLs by pasting instance IDs and event
  names unencoded) means the same after any number of encodings and decodings: no ``%``, no
  ``/``, ``?``, ``#``, ``\\`` or space.
* Starting with a letter or digit rules out the dot segments ``.`` and ``..`` (which URL
  normalisation collapses: ``instances/.`` would become the listing), a leading ``@`` (the
  durable runtime's entity IDs, ``@name@key``) and a leading ``-`` or ``:``.
* The same characters are valid in an Azure Table ``PartitionKey``/``RowKey`` (which forbid
  ``/ \\ # ?`` and control characters) and in blob names, so an ID becomes a storage key or a
  blob name without escaping. A blob name is IDs joined by ``/``: no empty segment, no leading
  or trailing ``/``, no ``.`` or ``..`` segment, no backslash.
* ASCII only: no look-alike letters, no digits such as ``²`` that ``str.isdigit`` accepts and
  ``int`` refuses, nothing that changes under Unicode normalisation.

Kinds and their maximum lengths (``MAX_LENGTHS``): an instance ID 256 (the durable extension's
own limit, ``DurableClient.MaxInstanceIdLength``); an orchestrator or event name 128; an order,
document, batch job, monitor or approval request ID, and a batch input name, 100 (they become
instance IDs and blob prefixes with room for a suffix); a SKU 64; an idempotency key 200.

Each kind is an ``Annotated`` type for pydantic models (``order_id: OrderId``) and can be
checked directly with :func:`check_id` (route values, headers).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import Field, StringConstraints

__all__ = [
    "BLOB_NAME_MAX_LENGTH",
    "ID_PATTERN",
    "MAX_LENGTHS",
    "BlobName",
    "DocumentId",
    "EventName",
    "IdempotencyKey",
    "InputName",
    "InstanceId",
    "JobId",
    "MonitorId",
    "OrchestratorName",
    "OrderId",
    "RequestId",
    "Sku",
    "check_blob_name",
    "check_id",
    "id_problem",
]

ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
BLOB_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*(/[A-Za-z0-9][A-Za-z0-9_.:-]*)*$"
BLOB_NAME_MAX_LENGTH: Final = 400

MAX_LENGTHS: Final[dict[str, int]] = {
    "instance": 256,
    "orchestrator": 128,
    "event": 128,
    "order": 100,
    "document": 100,
    "job": 100,
    "monitor": 100,
    "request": 100,
    "input": 100,
    "sku": 64,
    "idempotency": 200,
}

_ID = re.compile(ID_PATTERN)
_BLOB_NAME = re.compile(BLOB_NAME_PATTERN)
_GRAMMAR = "letters, digits, '_', '.', ':' or '-', starting with a letter or digit"


def _of(kind: str) -> StringConstraints:
    return StringConstraints(pattern=ID_PATTERN, min_length=1, max_length=MAX_LENGTHS[kind])


def _says(what: str, kind: str) -> Any:
    return Field(description=f"{what} ({_GRAMMAR}; at most {MAX_LENGTHS[kind]}).")


# One alias per kind, spelled out (not built in a loop) so type checkers see each as a str.
InstanceId = Annotated[str, _of("instance"), _says("An orchestration instance ID", "instance")]
OrchestratorName = Annotated[
    str, _of("orchestrator"), _says("An orchestrator function name", "orchestrator")
]
EventName = Annotated[str, _of("event"), _says("An external event name", "event")]
OrderId = Annotated[str, _of("order"), _says("An order ID, also its instance ID", "order")]
DocumentId = Annotated[
    str, _of("document"), _says("A document ID, also its instance ID", "document")
]
JobId = Annotated[str, _of("job"), _says("A batch job ID, also its instance ID", "job")]
MonitorId = Annotated[str, _of("monitor"), _says("A monitor ID, also its instance ID", "monitor")]
RequestId = Annotated[str, _of("request"), _says("A business request ID", "request")]
InputName = Annotated[str, _of("input"), _says("A batch input's name", "input")]
Sku = Annotated[str, _of("sku"), _says("A stock-keeping unit", "sku")]
IdempotencyKey = Annotated[
    str, _of("idempotency"), _says("A client's idempotency key", "idempotency")
]
BlobName = Annotated[
    str,
    StringConstraints(pattern=BLOB_NAME_PATTERN, min_length=1, max_length=BLOB_NAME_MAX_LENGTH),
    Field(description=f"A blob name: IDs ({_GRAMMAR}) joined by '/'; at most 400."),
]


def id_problem(value: object, kind: str) -> str | None:
    """Return why ``value`` is not an ID of ``kind``, or None when it is one.

    Parameters
    ----------
    value : object
        The candidate, as received (never trimmed or decoded here).
    kind : str
        A key of :data:`MAX_LENGTHS` (``"instance"``, ``"order"``, ``"sku"``...).

    Returns
    -------
    str | None
        A short reason a person can act on, or None.
    """
    limit = MAX_LENGTHS[kind]
    if not isinstance(value, str) or not value:
        return "must not be empty"
    if len(value) > limit:
        return f"must be at most {limit} characters"
    if _ID.fullmatch(value) is None:
        return f"must be {_GRAMMAR}"
    return None


def check_id(value: object, kind: str) -> str:
    """Return ``value`` when it is an ID of ``kind``; raise ``ValueError`` saying why not.

    Parameters
    ----------
    value : object
        The candidate.
    kind : str
        A key of :data:`MAX_LENGTHS`.

    Returns
    -------
    str
        The ID, unchanged.

    Raises
    ------
    ValueError
        With the reason from :func:`id_problem`.
    """
    problem = id_problem(value, kind)
    if problem is not None:
        raise ValueError(problem)
    assert isinstance(value, str)
    return value


def check_blob_name(value: object) -> str:
    """Return ``value`` when it is a blob name of this grammar; raise ``ValueError`` if not.

    Parameters
    ----------
    value : object
        The candidate, e.g. ``"inputs/2024-01.jsonl"``.

    Returns
    -------
    str
        The blob name, unchanged.

    Raises
    ------
    ValueError
        When it is empty, longer than 400 characters, or not IDs joined by ``/``.
    """
    if not isinstance(value, str) or not value:
        raise ValueError("must not be empty")
    if len(value) > BLOB_NAME_MAX_LENGTH:
        raise ValueError(f"must be at most {BLOB_NAME_MAX_LENGTH} characters")
    if _BLOB_NAME.fullmatch(value) is None:
        raise ValueError(f"must be segments of {_GRAMMAR}, joined by '/'")
    return value
