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
from typing import Any, Protocol, TypeVar

import azure.functions as func

from blueprints.http_errors import ApiError, json_response
from models.ids import id_problem

__all__ = [
    "Outcome",
    "await_outcome",
    "await_settled",
    "outcome_response",
    "refusal_error",
    "request_id_of",
    "wait_seconds",
]

T = TypeVar("T")
OutcomeT = TypeVar("OutcomeT", bound="Outcome")


class Outcome(Protocol):
    """What an outcome model offers: ``accepted``, ``refused`` or ``pending``, and its JSON."""

    @property
    def outcome(self) -> str: ...

    @property
    def request_id(self) -> str: ...

    @property
    def code(self) -> str | None: ...

    @property
    def reason(self) -> str | None: ...

    def to_wire(self) -> dict[str, Any]: ...


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


async def await_settled(
    read: Callable[[], Awaitable[OutcomeT]], setting: str, default: float
) -> OutcomeT:
    """Read an outcome until it is no longer ``pending``, for the time the app setting allows."""
    return await await_outcome(read, lambda value: value.outcome != "pending",
                               wait_seconds(setting, default))  # fmt: skip


def outcome_response(
    outcome: Outcome, uri: str, refusal: Callable[[Outcome, str], ApiError] | None = None
) -> func.HttpResponse:
    """Answer with an outcome: 200, or 202 with ``Location`` while pending.

    Parameters
    ----------
    outcome : Outcome
        The outcome read back.
    uri : str
        Where the outcome can be read again (``outcomeUri`` in the body).
    refusal : Callable[[Outcome, str], ApiError] | None
        For the request that made the decision: the error to answer when it was refused. A
        read-back of an outcome passes None and answers a refusal with 200 (it read it fine).

    Returns
    -------
    azure.functions.HttpResponse
        The outcome's JSON with ``outcomeUri``.

    Raises
    ------
    ApiError
        From ``refusal``, when the outcome is ``refused``.
    """
    body = {**outcome.to_wire(), "outcomeUri": uri}
    if outcome.outcome == "pending":
        return json_response(body, status=202, headers={"Location": uri, "Retry-After": "1"})
    if outcome.outcome == "refused" and refusal is not None:
        raise refusal(outcome, uri)
    return json_response(body)


def refusal_error(
    outcome: Outcome, uri: str, what: str, field: str, forbidden: tuple[str, str]
) -> ApiError:
    """Return the error answering a refused request: 403 when the caller may not decide.

    Parameters
    ----------
    outcome : Outcome
        The refused outcome (its ``code`` and ``reason`` say why).
    uri : str
        Where the outcome can be read again.
    what : str
        What the request was about, for the message (``"the decision on level 2"``).
    field : str
        The field a conflict is about.
    forbidden : tuple[str, str]
        The outcome code meaning "not allowed to decide", and the field it is about.

    Returns
    -------
    ApiError
        403 for ``forbidden``, else 409, with the request ID and ``outcomeUri`` in the detail.
    """
    denied = outcome.code == forbidden[0]
    return ApiError(
        403 if denied else 409,
        outcome.code or "RequestRefused",
        f"{what[0].upper()}{what[1:]} was not applied: {outcome.reason}.",
        [
            {
                "field": forbidden[1] if denied else field,
                "code": "refused",
                "message": outcome.reason or "refused",
                "requestId": outcome.request_id,
                "outcomeUri": uri,
            }
        ],
    )
