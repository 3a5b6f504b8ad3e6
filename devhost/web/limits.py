"""The real host's request limits, answered with the real host's status codes.

The Functions host serves HTTP with Kestrel, which it configures with a 100 MB request body
limit (``ScriptConstants.DefaultMaxRequestBodySize``, overridable with the app setting
``FUNCTIONS_REQUEST_BODY_SIZE_LIMIT``) and otherwise Kestrel's defaults
(``KestrelServerLimits``): a request line of at most 8 KB (414), at most 100 headers and
32 KB of header lines (431). Kestrel answers these, and header values that are not UTF-8 or
hold a NUL (400), with an empty body before any function runs.

aiohttp's own parser limits are raised well above these (``PARSER_LIMITS``) so the checks here
decide; only a request line or a single header line over 1 MiB, or more than 1,000 headers,
is refused by aiohttp itself (400), as is a request target with bytes that are not ASCII.
aiohttp is also told not to decompress request bodies: Kestrel hands a body on as sent, so a
``Content-Encoding: gzip`` body reaches the function as the bytes the client sent.
"""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web

__all__ = [
    "BODY_LIMIT_SETTING",
    "MAX_HEADER_COUNT",
    "MAX_HEADERS_TOTAL",
    "MAX_REQUEST_BODY",
    "MAX_REQUEST_LINE",
    "PARSER_LIMITS",
    "body_limit",
    "rejected",
]

MAX_REQUEST_BODY = 104_857_600  # ScriptConstants.DefaultMaxRequestBodySize
BODY_LIMIT_SETTING = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"
MAX_REQUEST_LINE = 8 * 1024  # KestrelServerLimits.MaxRequestLineSize
MAX_HEADERS_TOTAL = 32 * 1024  # KestrelServerLimits.MaxRequestHeadersTotalSize
MAX_HEADER_COUNT = 100  # KestrelServerLimits.MaxRequestHeaderCount

PARSER_LIMITS: dict[str, Any] = {
    "max_line_size": 1024 * 1024,
    "max_field_size": 1024 * 1024,
    "max_headers": 1000,
    "auto_decompress": False,
}

_HTTP_VERSION = len("HTTP/1.1")


def body_limit() -> int:
    """The request body limit: the app setting when it is a whole number, else 100 MB."""
    text = os.environ.get(BODY_LIMIT_SETTING, "").strip()
    # HttpRequestBodySizeMiddleware: long.TryParse, the default otherwise.
    return int(text) if text.isascii() and text.isdigit() else MAX_REQUEST_BODY


def _bad_header_value(value: str) -> bool:
    # aiohttp decodes header bytes as UTF-8 with surrogateescape: invalid bytes become lone
    # surrogates. Kestrel decodes ASCII, else strict UTF-8, and refuses NUL either way.
    return "\x00" in value or any("\udc80" <= char <= "\udcff" for char in value)


def rejected(request: web.Request) -> web.Response | None:
    """Kestrel's answer to a request over its limits, or None when the request is within them.

    Parameters
    ----------
    request : aiohttp.web.Request
        The request, before anything reads its body.

    Returns
    -------
    aiohttp.web.Response | None
        414, 431, 400 or 413 with an empty body, or None.
    """
    line = len(request.method) + 1 + len(request.raw_path) + 1 + _HTTP_VERSION
    if line > MAX_REQUEST_LINE:
        return web.Response(status=414)
    if len(request.raw_headers) > MAX_HEADER_COUNT:
        return web.Response(status=431)
    # Each header line with its ": " and CRLF, as Kestrel counts against the total.
    total = sum(len(name) + len(value) + 4 for name, value in request.raw_headers)
    if total > MAX_HEADERS_TOTAL:
        return web.Response(status=431)
    if any(_bad_header_value(value) for value in request.headers.values()):
        return web.Response(status=400)
    declared = request.content_length
    if declared is not None and declared > body_limit():
        return web.Response(status=413)
    return None
