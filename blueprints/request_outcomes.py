"""Requests that reach an orchestrator as events, and how a route learns what became of them.

Raising an event answers nothing. So a request that becomes an event carries a request ID (the
caller's ``Idempotency-Key`` header, or a new one), the orchestrator records its outcome under
that ID where the instance's status shows it, and the route reads the status for a moment
until the outcome appears. When it does not appear in time the route answers 202 with a link
that reads the outcome later.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import azure.functions as func

from blueprints.http_errors import ApiError
from models.ids import id_problem

__all__ = ["await_outcome", "request_id_of", "wait_seconds"]

T = TypeVar("T")


def request_id_of(req: func.HttpRequest) -> str:
    """Return the request's ``Idempotency-Key`` header, or a new request ID.

    The key names the outcome in a URL and in the instance's status, so it must follow the ID
    grammar (``models/ids.py``).
    """
    key = (req.headers.get("Idempotency-Key") or "").strip()
    if not key:
        return uuid.uuid4().hex
    problem = id_problem(key, "idempotency")
    if problem is not None:
        raise ApiError(
            400,
            "ValidationFailed",
            f"The Idempotency-Key header {problem}.",
            [{"field": "Idempotency-Key", "code": "invalid_id", "message": problem}],
        )
    return key


def wait_seconds(setting: str, default: float) -> float:
    """Return how long a route waits for an outcome: the app setting ``setting``, or default."""
    try:
        value = float(os.environ.get(setting, default))
    except ValueError:
        return default
    return value if value >= 0 else default


async def await_outcome(
    read: Callable[[], Awaitable[T]], settled: Callable[[T], bool], seconds: float
) -> T:
    """Read until ``settled`` says the value holds the outcome, or ``seconds`` have passed.

    Parameters
    ----------
    read : Callable[[], Awaitable[T]]
        Reads the instance (its status, or a view of it).
    settled : Callable[[T], bool]
        Whether a value read holds the outcome (or shows that none will come).
    seconds : float
        How long to keep reading.

    Returns
    -------
    T
        The last value read.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    delay = 0.01
    while True:
        value = await read()
        now = loop.time()
        if settled(value) or now >= deadline:
            return value
        await asyncio.sleep(min(delay, deadline - now))
        delay = min(delay * 2, 0.2)
