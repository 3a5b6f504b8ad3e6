"""The Durable codec with one encoder and one decoder (``devhost.engine.sdk_speedups``) gives what
the codec's own ``df_dumps``/``df_loads`` give, in loose and in strict mode, and every SDK
module that imported them uses it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from azure.functions import _durable_functions as codec

import devhost.engine.sdk_speedups  # noqa: F401 - installs the codec's shared encoder and decoder


class Point:
    """A custom object as the codec encodes it (``to_json``/``from_json``)."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def to_json(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> Point:
        return cls(data["x"], data["y"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


VALUES: list[Any] = [
    None,
    "Tokyo",
    'é \u2028 \ud800 " \\ \n',
    0,
    10**30,
    1.5,
    float("inf"),
    True,
    [1, "two", None, [3.0]],
    (1, 2),
    {"a": {"b": [1, {"c": None}]}, "d": "e"},
    {1: "int key"},
    Point(1, 2),
    {"nested": [Point(3, 4)]},
]

TEXTS = [
    '"Hello Tokyo!"',
    "5",
    "NaN",
    '{"a": [1, 2, {"b": null}]}',
    '{"__class__": "Point", "__module__": "tests.devhost.test_invoke_codec", '
    '"__data__": "{\\"x\\": 1, \\"y\\": 2}"}',
    "\ufeff1",
    "[1,",
    b'"bytes"',
]


def outcome(call: Callable[..., Any], *args: Any) -> Any:
    try:
        value = call(*args)
    except Exception as exc:  # the same error type and text, or the same value
        return ("raised", type(exc), str(exc))
    return ("returned", type(value), value)


def test_every_sdk_module_uses_the_shared_encoder_and_decoder() -> None:
    for name, module in list(sys.modules.items()):
        if module is not None and name.startswith(("azure.functions", "azure.durable_functions")):
            for attribute in ("df_dumps", "df_loads"):
                function = getattr(module, attribute, None)
                if function is not None:
                    assert hasattr(function, "__wrapped__"), f"{name}.{attribute}"


@pytest.mark.parametrize("strict", [False, True])
def test_the_same_text_and_values_as_the_codec(
    strict: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if strict:
        monkeypatch.setenv("AZURE_FUNCTIONS_DURABLE_STRICT_TYPING", "1")
    else:
        monkeypatch.delenv("AZURE_FUNCTIONS_DURABLE_STRICT_TYPING", raising=False)
    dumps, loads = codec.df_dumps, codec.df_loads
    own_dumps, own_loads = dumps.__wrapped__, loads.__wrapped__  # type: ignore[attr-defined]

    for value in VALUES:
        assert outcome(dumps, value) == outcome(own_dumps, value), value
    for text in TEXTS:
        assert outcome(loads, text) == outcome(own_loads, text), text
        assert outcome(loads, text, Point) == outcome(own_loads, text, Point), text


def test_a_nan_decodes_to_a_nan() -> None:
    value = codec.df_loads("NaN")
    assert value != value and json.dumps(value) == "NaN"
