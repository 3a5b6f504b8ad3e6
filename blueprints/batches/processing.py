"""The batch's business logic, without any host or storage: split, validate, normalise, report."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from models.batches import BatchChunkStats, BatchResult, ItemEnvelope, TransactionRecord
from models.common import validation_details

__all__ = [
    "MAX_DETAIL_LENGTH",
    "InvalidEncodingError",
    "chunk_lines",
    "decode_input",
    "failure_percent",
    "input_lines",
    "over_failure_limit",
    "process_line",
    "process_lines",
    "report_document",
]

# A failed item's reason is shown to people; one long reason must not bloat the report.
MAX_DETAIL_LENGTH = 500


class InvalidEncodingError(ValueError):
    """An input is not UTF-8 text; ``line`` is the first line (from 1) holding a bad byte."""

    def __init__(self, line: int) -> None:
        super().__init__(f"line {line} is not valid UTF-8 text")
        self.line = line


def decode_input(raw: bytes) -> str:
    """Return a JSON-lines input as text: UTF-8, a leading byte-order mark dropped.

    A byte that is not UTF-8 is refused rather than replaced: a replacement character would
    make a corrupt record look valid (a name with U+FFFD in it passes every rule).

    Raises
    ------
    InvalidEncodingError
        Naming the first line with a byte that is not UTF-8.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidEncodingError(raw[: error.start].count(b"\n") + 1) from None


def input_lines(items: list[Any] | None, text: str | None) -> list[str]:
    """Return the job's items as JSON lines, from inline items or a JSON-lines text.

    Blank lines of a JSON-lines text are not items; every other line is one, valid or not, so
    a malformed line is reported rather than silently dropped.
    """
    if items is not None:
        return [json.dumps(item, separators=(",", ":")) for item in items]
    return [line for line in (text or "").splitlines() if line.strip()]


def chunk_lines(lines: list[str], batch_size: int) -> Iterator[list[str]]:
    """Yield consecutive chunks of at most ``batch_size`` lines."""
    for start in range(0, len(lines), batch_size):
        yield lines[start : start + batch_size]


def _short(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_LENGTH else text[: MAX_DETAIL_LENGTH - 1] + "…"


def process_line(index: int, line: str) -> ItemEnvelope:
    """Validate and normalise one item; a bad item gives an envelope with the reason, never raises.

    Parameters
    ----------
    index : int
        The item's position in the job.
    line : str
        The item as one line of JSON.

    Returns
    -------
    ItemEnvelope
        ``ok`` with the normalised record, or ``errorCode`` (``malformed_json``, ``not_an_object``,
        ``invalid_record``) and a ``detail`` naming the bad fields.
    """
    try:
        value = json.loads(line)
    except ValueError as error:
        return ItemEnvelope(
            index=index, ok=False, error_code="malformed_json", detail=_short(str(error))
        )
    if not isinstance(value, dict):
        return ItemEnvelope(
            index=index,
            ok=False,
            error_code="not_an_object",
            detail=f"expected a JSON object, got {type(value).__name__}",
        )
    try:
        record = TransactionRecord.model_validate(value)
    except ValidationError as error:
        problems = "; ".join(
            f"{item['field']}: {item['message']}" for item in validation_details(error, "record")
        )
        return ItemEnvelope(
            index=index, ok=False, error_code="invalid_record", detail=_short(problems)
        )
    return ItemEnvelope(index=index, ok=True, record=record.normalised())


def process_lines(first_item: int, lines: Iterable[str]) -> list[ItemEnvelope]:
    """Process a chunk's lines; item indexes continue from ``first_item``."""
    return [process_line(first_item + offset, line) for offset, line in enumerate(lines)]


def failure_percent(failed: int, processed: int) -> float:
    """Return the failed share of the processed items, in percent (0 when nothing ran)."""
    return round(100.0 * failed / processed, 2) if processed else 0.0


def over_failure_limit(failed: int, total_items: int, max_failure_percent: float) -> bool:
    """Return whether ``failed`` items already put the whole job over its failure limit.

    The share is of *all* the job's items, not of those processed so far: once it is over the
    limit, the job fails whatever the remaining chunks hold, and never before that point.
    """
    return total_items > 0 and 100.0 * failed / total_items > max_failure_percent


def report_document(
    summary: BatchResult, chunks: list[BatchChunkStats], failures: list[dict[str, Any]]
) -> dict[str, Any]:
    """Return the report: the summary, per-chunk counts and every failed item with its reason."""
    return {
        "summary": summary.to_wire(),
        "chunks": [chunk.to_wire() for chunk in sorted(chunks, key=lambda c: c.chunk_index)],
        "failures": sorted(failures, key=lambda failure: failure["index"]),
    }
