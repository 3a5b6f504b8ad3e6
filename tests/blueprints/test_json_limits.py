"""Reading a caller's JSON within limits (blueprints/json_limits.py)."""

from __future__ import annotations

import pytest

from blueprints.json_limits import MAX_DEPTH, MAX_SAFE_INTEGER, JsonRejected, parse_json


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "json_too_deep"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "json_too_deep"),
        (b'{"a": ' * 40 + b"1" + b"}" * 40, "json_too_deep"),
        (b"1e400", "number_out_of_range"),
        (b"-1e400", "number_out_of_range"),
        (b"NaN", "number_out_of_range"),
        (b"[Infinity]", "number_out_of_range"),
        (b"9" * 5000, "number_out_of_range"),
        (str(MAX_SAFE_INTEGER + 1).encode(), "number_out_of_range"),
        (str(-MAX_SAFE_INTEGER - 1).encode(), "number_out_of_range"),
        (b'{"a": 1, "a": 2}', "duplicate_key"),
        (b'{"a": "\\ud800"}', "invalid_string"),
        (b'{"\\udfff": 1}', "invalid_string"),
        (b'"caf\xe9"', "not_utf8"),
        (b"{nope", "json_invalid"),
        (b"", "json_invalid"),
    ],
)
def test_what_is_refused_and_why(text: bytes, code: str) -> None:
    with pytest.raises(JsonRejected) as refused:
        parse_json(text)

    assert refused.value.code == code


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, _nested(MAX_DEPTH)),
        (str(MAX_SAFE_INTEGER).encode(), MAX_SAFE_INTEGER),
        (str(-MAX_SAFE_INTEGER).encode(), -MAX_SAFE_INTEGER),
        (b"1.5e300", 1.5e300),
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one character
        (b'\xef\xbb\xbf{"a": [1, "x", null, true]}', {"a": [1, "x", None, True]}),
    ],
)
def test_what_is_read(text: bytes, value: object) -> None:
    assert parse_json(text) == value
