"""An activity's result is stored as compact JSON; a string, number or boolean text is
already that text and is kept as ``df_dumps`` wrote it."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from azure.functions._durable_functions import df_dumps

from devhost.engine.invoke import _stored_result


class Size(enum.IntEnum):
    LARGE = 3


@pytest.mark.parametrize(
    "value",
    [
        "Hello Tokyo!",
        "",
        'quote " backslash \\ newline \n',
        "é \u2028 \ud800 \U0001f600",
        0,
        -1,
        10**30,
        1.5,
        1e-7,
        1e300,
        -0.0,
        float("nan"),
        float("inf"),
        True,
        False,
        Size.LARGE,
        {"a": [1, {"b": None}], "c": "d"},
        [1, "two", 3.0],
        [],
        {},
    ],
)
def test_stored_text_is_the_compact_json_of_the_value(value: Any) -> None:
    encoded = df_dumps(value)

    assert _stored_result(encoded) == json.dumps(json.loads(encoded), separators=(",", ":"))


def test_null_is_no_result() -> None:
    assert _stored_result(df_dumps(None)) is None
