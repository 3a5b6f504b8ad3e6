"""The request headers the API reads, each with its grammar: ``If-Match``, ``Idempotency-Key``,
``X-Actor`` and the management API's ``x-ms-continuation-token``.

A header the request did not send (or sent empty) reads as None. A value that breaks its
grammar is a 400 naming the header, never a 500: ``If-Match: ²`` (``str.isdigit`` accepts it,
``int`` does not), 5,000 digits, an ``X-Actor`` of 201 characters or with control characters or
invalid UTF-8 (which the host hands on as lone surrogates), a token with a newline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blueprints.http_errors import ApiError
from models.common import CONTINUATION_TOKEN_PATTERN, MAX_CONTINUATION_TOKEN, check_text
from models.ids import check_id

__all__ = ["ACTOR", "CONTINUATION_TOKEN", "IDEMPOTENCY_KEY", "IF_MATCH", "MAX_ACTOR", "Header"]

MAX_ACTOR = 200
MAX_REVISION = 2**31 - 1
_REVISION = re.compile(r'(?:W/)?"?([0-9]{1,10})"?')
_TOKEN = re.compile(CONTINUATION_TOKEN_PATTERN)


@dataclass(frozen=True)
class Header:
    """One request header: its name, how its value is read, and how OpenAPI describes it."""

    name: str
    parse: Callable[[str], Any] = field(compare=False)
    description: str = field(default="", compare=False)
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"}, compare=False)

    def read(self, raw: str | None) -> Any:
        """Return the header's value (None when absent or empty), or raise a 400 naming it."""
        if raw is None or not raw.strip():
            return None
        try:
            return self.parse(raw.strip())
        except ValueError as error:
            raise ApiError(
                400,
                "ValidationFailed",
                f"The {self.name} header {error}.",
                [{"field": self.name, "code": "invalid_header", "message": str(error)}],
            ) from error


def _revision(value: str) -> int | None:
    if value == "*":
        return None
    found = _REVISION.fullmatch(value)
    if found is None or int(found.group(1)) > MAX_REVISION:
        raise ValueError('must be a revision number such as "3", or *')
    return int(found.group(1))


def _token(value: str) -> str:
    if len(value) > MAX_CONTINUATION_TOKEN or _TOKEN.fullmatch(value) is None:
        raise ValueError("is not a continuation token this API handed out")
    return value


IF_MATCH = Header(
    "If-Match",
    _revision,
    "The revision the change is based on (the ETag of the last read); 412 when stale.",
    {"type": "string", "pattern": r'^(\*|(W/)?"?[0-9]{1,10}"?)$'},
)
IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    lambda value: check_id(value, "idempotency"),
    "Makes a retried request apply once; the ID grammar, at most 200 characters.",
    {"type": "string", "maxLength": 200, "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"},
)
ACTOR = Header(
    "X-Actor",
    lambda value: check_text(value, MAX_ACTOR),
    "Who makes the change, as recorded in the audit trail (at most 200 characters).",
    {"type": "string", "maxLength": MAX_ACTOR},
)
CONTINUATION_TOKEN = Header(
    "x-ms-continuation-token",
    _token,
    "The token of the previous page (also accepted as the continuationToken query value).",
    {"type": "string", "maxLength": MAX_CONTINUATION_TOKEN, "pattern": CONTINUATION_TOKEN_PATTERN},
)
