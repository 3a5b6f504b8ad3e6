"""The store's faster text makers write what the plain ones wrote, byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
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
