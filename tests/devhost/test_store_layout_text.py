"""The store's faster text makers write what the plain ones wrote, byte for byte."""

from __future__ import annotations

import json
import operator
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.data.tables import EdmType
from hypothesis import example, given, settings
from hypothesis import strategies as st

from devhost.store import azure_layout

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities too: json.dumps writes NaN, Infinity
    | st.text(),  # any code point: ASCII, accented, astral, lone surrogates
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_compact_json_is_json_dumps_with_compact_separators(value: Any) -> None:
    assert azure_layout._compact_json(value) == json.dumps(value, separators=(",", ":"))


def test_compact_json_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        azure_layout._compact_json({"when": object()})


# Entities as the store builds them: strings (any code point), numbers, booleans, Int64s and
# times, under any column name.
column_values = (
    st.text()
    # Long strings, near the limits: runs of one character (each JSON escape a length).
    | st.builds(
        operator.mul, st.sampled_from(["a", '"', "é", "\U0001f600"]), st.integers(1, 60_000)
    )
    | st.booleans()
    | st.integers(-(2**31), 2**31 - 1)
    | st.integers(2**31, 2**62).map(lambda value: (value, EdmType.INT64))
    | st.floats()
    | st.datetimes(timezones=st.just(UTC))
)
entities = st.dictionaries(st.text(min_size=1, max_size=20), column_values, max_size=12)


@settings(max_examples=500, deadline=None)
@given(entities)
def test_a_rows_text_bounds_what_its_limits_would_measure(entity: dict[str, Any]) -> None:
    """``fits_as_is`` and ``_payload_bound`` judge a row from its text in place of
    ``too_large_columns`` and ``_payload_size``: never a row those would treat otherwise."""
    row = azure_layout.table_row(entity)
    if azure_layout.fits_as_is(row):
        assert azure_layout.too_large_columns(entity) == []
    assert azure_layout._payload_bound(row) >= azure_layout._payload_size(entity)


@settings(max_examples=100, deadline=None)
@given(st.lists(entities, max_size=110))
@example([{"S": "é" * 100_000, "N": 1}] * 30)  # split by size
@example([{"S": "a"}] * 101)  # split by count
def test_rows_split_into_transactions_as_their_measured_sizes_split_them(
    rows: list[dict[str, Any]],
) -> None:
    def measured(batch: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        out: list[list[dict[str, Any]]] = [[]]
        payload = 0
        for entity in batch:
            size = azure_layout._payload_size(entity)
            if out[-1] and (
                len(out[-1]) == azure_layout.MAX_TRANSACTION_OPERATIONS
                or payload + size > azure_layout._MAX_TRANSACTION_PAYLOAD
            ):
                out.append([])
                payload = 0
            out[-1].append(entity)
            payload += size
        return out if batch else []

    split = azure_layout.transactions([azure_layout.table_row(entity) for entity in rows])
    assert [[row.entity for row in batch] for batch in split] == measured(rows)


answers = st.lists(
    st.sampled_from(["HTTP/1.1 ", "204", "4", "\n", "\r\n", "\r", "x", "HTTP/1.1 2", "٣"]),
    max_size=30,
).map("".join)


@settings(max_examples=1000, deadline=None)
@given(answers)
def test_part_statuses_are_what_the_line_start_pattern_finds(text: str) -> None:
    line_start = re.compile(r"^HTTP/1\.1 (\d{3})", re.MULTILINE)
    assert azure_layout._part_statuses(text) == line_start.findall(text)


@settings(max_examples=1000, deadline=None)
@given(st.datetimes(timezones=st.none() | st.just(UTC)))
def test_table_times_are_written_as_strftime_wrote_them(value: datetime) -> None:
    assert azure_layout.table_time(value) == value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
