"""The project's own generators: what an OpenAPI schema cannot express.

Hostile IDs (dot segments, encoded slashes, entity IDs, look-alike digits...), header values
(``If-Match: ²``, 5,000 digits, newlines, invalid UTF-8), bodies (deep nesting, numbers out of
range, duplicate keys, invalid UTF-8, lone surrogates, wrong encodings), query strings
(repeated names, long values) and sizes.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

# Each reached a 500 or the wrong resource somewhere before the input boundary (issue #14).
HOSTILE_IDS = [
    ".",
    "..",
    "%2E",
    "%2E%2E",
    "%2F",
    "a%2Fb",
    "a%252Fb",
    "a%2F..%2Fb",
    "%00",
    "@inventory@SKU-1",
    "@@",
    "-x",
    ":x",
    "x y",
    "²",
    "٣",
    "ａ",  # a full-width letter
    "\u202e",
    "x" * 257,
    "x" * 5000,
    "%FF%FE",
    "%ED%A0%80",  # a UTF-8-encoded lone surrogate
    "'; DROP TABLE x;--",
    "$",
    "null",
    "*",
]


def path_segment(value: str) -> str:
    """``value`` as a URL path segment: already-encoded escapes kept, the rest encoded."""
    return quote(value, safe="%@:$'*;")


def ids(known: list[str]) -> st.SearchStrategy[str]:
    """IDs a caller might name: known ones, hostile ones, the grammar's and random text."""
    grammar = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,40}\Z")
    return st.one_of(
        st.sampled_from(known),
        st.sampled_from(HOSTILE_IDS),
        grammar,
        st.text(min_size=1, max_size=60),
    )


def header_values() -> st.SearchStrategy[bytes]:
    """Raw header values, bytes included that are not UTF-8 (sent as they are)."""
    return st.one_of(
        st.sampled_from(
            [
                "²".encode(),
                b"9" * 5000,
                b'W/"3"',
                b'"-1"',
                b"*",
                b"1e3",
                b"0x10",
                b"\xff\xfe",
                b"caf\xe9",
                "Zoë".encode(),
                b"x" * 201,
                b"x" * 9000,
                b"a\tb",
                b" ",
            ]
        ),
        st.binary(min_size=1, max_size=80),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    ).filter(lambda b: b"\r" not in b and b"\n" not in b)  # a line break would end the header


def _nested(depth: int, leaf: Any, as_object: bool) -> str:
    opening, closing = ('{"a":', "}") if as_object else ("[", "]")
    return opening * depth + json.dumps(leaf) + closing * depth


def hostile_bodies() -> st.SearchStrategy[bytes]:
    """Bodies a JSON reader may choke on."""
    return st.one_of(
        st.sampled_from(
            [
                _nested(10_000, 1, False).encode(),
                _nested(10_000, 1, True).encode(),
                _nested(400, "x", True).encode(),
                _nested(33, 1, False).encode(),
                b'{"quantity": 1e400}',
                b'{"quantity": -1e400}',
                b'{"quantity": NaN}',
                b'{"quantity": Infinity}',
                b'{"quantity": ' + b"9" * 5000 + b"}",
                b'{"quantity": 9007199254740993}',
                b'{"a": 1, "a": 2}',
                b'{"a": "\\ud800"}',
                b'{"\\udfff": 1}',
                b'"\\u0000"',
                b"\xff\xfe{}",
                b'{"a": "caf\xe9"}',
                b"\xef\xbb\xbf{}",
                b"{" * 100_000,
                b"null",
                b"[]",
                b"true",
                b"0",
                b'""',
                b"{",
                b"",
            ]
        ),
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=10), inner, max_size=4)
            ),
            max_leaves=30,
        ).map(lambda v: json.dumps(v, allow_nan=True).encode()),
    )


def content_headers() -> st.SearchStrategy[dict[str, str]]:
    """Content-Type and Content-Encoding pairs, most of them wrong."""
    return st.fixed_dictionaries(
        {},
        optional={
            "Content-Type": st.sampled_from(
                [
                    "application/json",
                    "application/json; charset=utf-8",
                    "application/json; charset=latin-1",
                    "application/json; charset=utf-16",
                    "text/plain",
                    "application/octet-stream",
                    "multipart/form-data; boundary=x",
                    "application/x-www-form-urlencoded",
                    ";;;",
                ]
            ),
            "Content-Encoding": st.sampled_from(["gzip", "br", "deflate", "identity", "x"]),
        },
    )


def query_strings() -> st.SearchStrategy[str]:
    """Query strings with repeated names, odd escapes and long values."""
    names = st.sampled_from(
        [
            "runtimeStatus",
            "top",
            "continuationToken",
            "createdFrom",
            "createdTo",
            "instanceIdPrefix",
            "name",
            "history",
            "reason",
            "approver",
            "status",
            "state",
            "recipient",
            "requestId",
            "code",
            "showInput",
            "showHistory",
        ]
    )
    values = st.one_of(
        st.sampled_from(
            [
                "Running",
                ",".join(["Running"] * 500),
                "²",
                "-1",
                "0",
                "99999999999999999999",
                "1e400",
                "true",
                "%0A",
                "a%0Ab",
                "%FF",
                "%ED%A0%80",
                "eyJhIjoxfQ==",
                "e30=",
                "W10=",
                "x" * 5000,
                "2024-13-45T99:99:99",
                "",
            ]
        ).map(lambda t: quote(t, safe="%,=")),
        st.text(max_size=30).map(lambda t: quote(t, safe="")),
    )
    pair = st.tuples(names, values).map(lambda p: f"{p[0]}={p[1]}")
    # At most 500 repetitions of a value under 2 KB: long URLs, under aiohttp's 1 MiB line limit.
    repeated = st.tuples(names, values.filter(lambda v: len(v) < 2000), st.integers(2, 500)).map(
        lambda p: "&".join([f"{p[0]}={p[1]}"] * p[2])
    )
    return st.lists(st.one_of(pair, repeated), min_size=1, max_size=4).map("&".join)
