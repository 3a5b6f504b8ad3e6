"""HTTP calls and polling for the end-to-end tests (the host runs as another process)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import Message
from typing import Any

from tests.waiting import DEFAULT_TIMEOUT, eventually_sync


def request_with_headers(
    method: str, url: str, body: Any = None, timeout: float = 15
) -> tuple[int, Any, Message]:
    """Send a JSON request; return the status, the decoded JSON body (or None) and headers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None), response.headers
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, (json.loads(raw) if raw else None), error.headers


def request_json(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """Send a JSON request; return the status and the decoded JSON body (or None)."""
    status, payload, _ = request_with_headers(method, url, body)
    return status, payload


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "it") -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Bounded by time, at least the suite's generous default (tests/waiting.py): a host process
    on a loaded machine is slow, and a wait that passes returns as soon as it can.
    """
    return eventually_sync(predicate, what, timeout=max(timeout, DEFAULT_TIMEOUT))
