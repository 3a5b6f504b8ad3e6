"""The one error body every HTTP endpoint answers with, and the answers that use it.

Shape::

    {"error": {"code": "ValidationFailed",
               "message": "The request body is invalid.",
               "details": [{"field": "cities[0]", "code": "string_too_short",
                            "message": "String should have at least 1 character"}]}}

A server-side failure (5xx) also carries ``"correlationId"``: the same ID is in the log line
that holds the exception, and nothing else about it leaves (no exception text, traceback or
file path). Handlers raise :class:`ApiError`; :func:`json_errors` (applied by
``blueprints.http_input.endpoint``) turns it, and any unexpected exception, into that body.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from models.common import WireModel, validation_details

__all__ = [
    "ApiError",
    "error_response",
    "json_errors",
    "json_response",
    "list_page_response",
    "new_correlation_id",
    "server_error",
    "validate_model",
]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
ModelT = TypeVar("ModelT", bound=BaseModel)


class ApiError(Exception):
    """An HTTP error with the status, code, message and details to answer with.

    Parameters
    ----------
    status : int
        The HTTP status code.
    code : str
        A stable, machine-readable error code (PascalCase).
    message : str
        What went wrong and what to do about it, for a person.
    details : list[dict[str, Any]] | None
        One entry per problem, each naming the ``field`` concerned.
    headers : Mapping[str, str] | None
        Extra response headers (e.g. ``Location`` of a conflicting instance).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = dict(headers or {})
        self.correlation_id = correlation_id

    def to_response(self) -> func.HttpResponse:
        """Return the error as an HTTP response.

        Returns
        -------
        azure.functions.HttpResponse
            The JSON error body with this error's status and headers.
        """
        return error_response(
            self.status, self.code, self.message, self.details, self.headers, self.correlation_id
        )


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    """Return a JSON HTTP response.

    Parameters
    ----------
    body : Any
        A JSON-serialisable value.
    status : int
        The HTTP status code.
    headers : Mapping[str, str] | None
        Extra response headers.

    Returns
    -------
    azure.functions.HttpResponse
        The response, with ``Content-Type: application/json``.
    """
    return func.HttpResponse(
        # allow_nan=False: NaN and Infinity are not JSON, so none is ever sent.
        body=json.dumps(body, allow_nan=False),
        status_code=status,
        mimetype="application/json",
        headers=dict(headers or {}),
    )


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    correlation_id: str | None = None,
) -> func.HttpResponse:
    """Return an HTTP response carrying the standard error body.

    Parameters
    ----------
    status : int
        The HTTP status code.
    code : str
        A stable, machine-readable error code.
    message : str
        A message a person can act on.
    details : list[dict[str, Any]] | None
        One entry per problem.
    headers : Mapping[str, str] | None
        Extra response headers.
    correlation_id : str | None
        The ID under which the failure was logged (server-side failures).

    Returns
    -------
    azure.functions.HttpResponse
        ``{"error": {"code", "message", "details"[, "correlationId"]}}`` with the given status.
    """
    error: dict[str, Any] = {"code": code, "message": message, "details": details or []}
    if correlation_id is not None:
        error["correlationId"] = correlation_id
    return json_response({"error": error}, status=status, headers=headers)


def new_correlation_id() -> str:
    """Return a new ID to log a failure under and hand to the caller."""
    return uuid.uuid4().hex


def server_error(status: int, code: str, message: str, log_message: str, *args: Any) -> ApiError:
    """Log a server-side failure with a new correlation ID and return the error to answer.

    Parameters
    ----------
    status : int
        502, 503...
    code : str
        The error code.
    message : str
        What the caller can do, without the failure's internals.
    log_message, *args : str, Any
        What happened, for the log only (``logging`` style).

    Returns
    -------
    ApiError
        The error, its message ending with the correlation ID it also carries.
    """
    correlation_id = new_correlation_id()
    logger.error(f"{log_message} [correlation ID %s]", *args, correlation_id)
    return ApiError(
        status,
        code,
        f"{message} (correlation ID {correlation_id}).",
        correlation_id=correlation_id,
    )


def json_errors(
    handler: Callable[P, Awaitable[func.HttpResponse]],
) -> Callable[P, Awaitable[func.HttpResponse]]:
    """Decorate an HTTP handler so every error it raises answers with the standard body.

    Apply it closest to the function (below the trigger and binding decorators).
    ``functools.wraps`` keeps the signature, which the Functions worker reads to match
    parameters to bindings.

    Parameters
    ----------
    handler : Callable[P, Awaitable[func.HttpResponse]]
        The async HTTP handler.

    Returns
    -------
    Callable[P, Awaitable[func.HttpResponse]]
        The handler, answering :class:`ApiError` with its status and anything else with a 500
        that carries only a correlation ID (the exception goes to the log under it).
    """

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> func.HttpResponse:
        try:
            return await handler(*args, **kwargs)
        except ApiError as error:
            return error.to_response()
        except Exception as error:
            if _durable_storage_unavailable(error):
                # Not the caller's mistake, and it passes; the host logs the outage itself.
                return error_response(
                    503,
                    "StorageUnavailable",
                    "The workflow store is unavailable; try again shortly.",
                    headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
                )
            correlation_id = new_correlation_id()
            logger.exception(
                "Unhandled error in HTTP handler %s [correlation ID %s]",
                handler.__name__,
                correlation_id,
            )
            return error_response(
                500,
                "InternalError",
                "The server failed to process the request; the error has been logged under "
                f"correlation ID {correlation_id}.",
                correlation_id=correlation_id,
            )

    return wrapper


STORAGE_RETRY_AFTER_SECONDS = 5


def _durable_storage_unavailable(error: Exception) -> bool:
    """Whether the durable client failed because the host answered 503 (its storage is down).

    The Python client raises a plain ``Exception`` for any answer it does not expect, with the
    status code in its message (``... status code 503``) or, for a start, the host's error
    body (``The task hub's storage is unavailable ...``)."""
    text = str(error)
    return "status code 503" in text or "storage is unavailable" in text


_SOURCE_PHRASES = {"body": "request body", "query": "query string"}


def validate_model(model: type[ModelT], data: Any, source: str = "body") -> ModelT:
    """Validate data against a model, answering 400 with one detail per bad field.

    Parameters
    ----------
    model : type[ModelT]
        The model to validate against.
    data : Any
        The parsed JSON body, or the query parameters.
    source : str
        ``"body"`` or ``"query"``: named in the message, and as the ``field`` of a problem
        with the value as a whole.

    Returns
    -------
    ModelT
        The validated model.

    Raises
    ------
    ApiError
        400 ``ValidationFailed`` listing each invalid or missing field.
    """
    try:
        return model.model_validate(data)
    except ValidationError as error:
        details = validation_details(error, root=source)
        fields = ", ".join(dict.fromkeys(detail["field"] for detail in details))
        raise ApiError(
            400,
            "ValidationFailed",
            f"The {_SOURCE_PHRASES.get(source, source)} is invalid ({fields}); see details.",
            details,
        ) from error


async def list_page_response(
    query: ModelT,
    list_page: Callable[[ModelT], WireModel],
) -> func.HttpResponse:
    """Answer a list route: read one page for the checked query, return it as JSON.

    Parameters
    ----------
    query : ModelT
        The route's checked query (filters, ``top``, ``continuationToken``).
    list_page : Callable[[ModelT], WireModel]
        The blocking table read (``app_storage.query_page`` underneath); it runs in a thread
        and raises ``ValueError`` for a continuation token it did not hand out.

    Returns
    -------
    func.HttpResponse
        200 with the page.

    Raises
    ------
    ApiError
        400 ``InvalidContinuationToken`` (naming the ``continuationToken`` field) for a token
        no list route of this API handed out.
    """
    try:
        page = await asyncio.to_thread(list_page, query)
    except ValueError as error:
        raise ApiError(
            400,
            "InvalidContinuationToken",
            "The continuation token is not one this API handed out; start from the first page.",
            [{"field": "continuationToken", "code": "invalid", "message": "token not accepted"}],
        ) from error
    return json_response(page.to_wire())
