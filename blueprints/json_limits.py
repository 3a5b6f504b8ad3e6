"""Reading JSON text from a caller with limits: size, depth, number range, and nothing JSON lacks.

The standard library's parser (RFC 8259 JSON plus Python's extras) is kept and told what to
refuse, rather than hand-writing a parser: ``NaN`` and ``Infinity`` (not JSON; a stored one is
later served as invalid JSON), a number that overflows to infinity (``1e400``), an integer
outside the range every JSON reader can hold exactly (±(2**53 - 1), RFC 7493 I-JSON §2.2: a
5,000-digit integer is refused before Python converts it), a key repeated in one object (RFC 7493
§2.3: two readers could pick different values), a lone UTF-16 surrogate (``"\\ud800"`` cannot be
written as UTF-8, so storing it would fail later), text that is not UTF-8, and nesting deeper
than :data:`MAX_DEPTH` (Python's parser raises ``RecursionError``, not ``ValueError``, at about
1,000 levels; the depth limit also keeps later serialisation away from its own recursion limit).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "JsonRejected",
    "parse_json",
]

MAX_DEPTH = 32
MAX_SAFE_INTEGER = 2**53 - 1
# A longer integer literal cannot be in range; checked before int() so no time is spent on it.
_MAX_INTEGER_DIGITS = len(str(MAX_SAFE_INTEGER)) + 1
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRejected(ValueError):
    """JSON text that is refused, with a message a caller can act on.

    Parameters
    ----------
    message : str
        What is wrong, without echoing the text.
    code : str
        The detail code: ``json_invalid``, ``json_too_deep``, ``number_out_of_range``,
        ``duplicate_key``, ``invalid_string`` or ``not_utf8``.
    """

    def __init__(self, message: str, code: str = "json_invalid") -> None:
        super().__init__(message)
        self.code = code


def _reject_constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not a JSON number", "number_out_of_range")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRejected("a number is too large to be represented", "number_out_of_range")
    return value


def _safe_int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > _MAX_INTEGER_DIGITS or abs(value := int(text)) > MAX_SAFE_INTEGER:
        raise JsonRejected(
            f"an integer is outside ±{MAX_SAFE_INTEGER}; send large numbers as strings",
            "number_out_of_range",
        )
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise JsonRejected("an object repeats a key", "duplicate_key")
    return value


def _check_shape(value: Any, max_depth: int) -> None:
    # Iterative, so checking a deep value cannot itself hit the recursion limit.
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                raise JsonRejected("a string holds a lone UTF-16 surrogate", "invalid_string")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > max_depth:
            raise JsonRejected(f"the value nests deeper than {max_depth} levels", "json_too_deep")
        children = list(item.items()) if isinstance(item, dict) else [(None, v) for v in item]
        for key, child in children:
            if key is not None and _LONE_SURROGATE.search(key):
                raise JsonRejected("a key holds a lone UTF-16 surrogate", "invalid_string")
            pending.append((child, depth + 1))


def parse_json(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON text within the limits of this module.

    Parameters
    ----------
    raw : bytes
        The text as received (a UTF-8 byte order mark is tolerated).
    max_depth : int
        The deepest nesting of arrays and objects accepted (a scalar is depth 0, ``[]`` 1).

    Returns
    -------
    Any
        The value: dicts, lists, str, int (within ±(2**53 - 1)), finite float, bool, None.

    Raises
    ------
    JsonRejected
        When the text is not UTF-8 or not JSON, or breaks one of the limits.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise JsonRejected("the text is not UTF-8", "not_utf8") from error
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_safe_int,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError as error:
        raise JsonRejected(
            f"the value nests deeper than {max_depth} levels", "json_too_deep"
        ) from error
    except JsonRejected:
        raise
    except ValueError as error:
        # json.JSONDecodeError says where ("Expecting value: line 1 column 1 (char 0)"),
        # never what the text was.
        raise JsonRejected(f"not valid JSON ({error})") from error
    _check_shape(value, max_depth)
    return value
