"""Sending a request byte for byte: header values that are not UTF-8, odd targets, any body."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit


def send(
    base_url: str,
    method: str,
    target: str,
    headers: dict[str, str | bytes] | None = None,
    body: bytes = b"",
    timeout: float = 60,
) -> tuple[int, bytes, str]:
    """Send one request on a new connection; return the status, the body and its media type."""
    origin = urlsplit(base_url)
    connection = http.client.HTTPConnection(origin.hostname, origin.port, timeout=timeout)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        given = {name.lower() for name in headers or {}}
        if "content-length" not in given and (body or method in ("POST", "PUT", "PATCH")):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        media_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
        return response.status, response.read(), media_type
    finally:
        connection.close()
