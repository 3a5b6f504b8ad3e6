"""The one error body every HTTP endpoint answers with, and the request-parsing helpers that use it.

Shape::

    {"error": {"code": "ValidationFailed",
               "message": "The request body is invalid.",
               "details": [{"field": "cities[0]", "code": "string_too_short",
                            "message": "String should have at least 1 character"}]}}

Handlers raise :class:`ApiError`; the :func:`json_errors` decorator turns it, and any
unexpected exception, into that body, so no client mistake surfaces as a bare 500.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
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
    "read_json_body",
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
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = dict(headers or {})

    def to_response(self) -> func.HttpResponse:
        """Return the error as an HTTP response.

        Returns
        -------
        azure.functions.HttpResponse
            The JSON error body with this error's status and headers.
        """
        return error_response(self.status, self.code, self.message, self.details, self.headers)


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
        body=json.dumps(body),
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

    Returns
    -------
    azure.functions.HttpResponse
        ``{"error": {"code", "message", "details"}}`` with the given status.
    """
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return json_response(body, status=status, headers=headers)


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
        The handler, answering :class:`ApiError` with its status and anything else with 500.
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
            logger.exception("Unhandled error in HTTP handler %s", handler.__name__)
            return error_response(
                500,
                "InternalError",
                "The server failed to process the request; the error has been logged.",
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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json_body(req: func.HttpRequest) -> Any:
    """Parse the request body as JSON; an empty body reads as an empty object.

    Reading an empty body as ``{}`` lets validation name each missing field, and lets a model
    whose fields all have defaults be used without a body.

    Parameters
    ----------
    req : azure.functions.HttpRequest
        The request.

    Returns
    -------
    Any
        The parsed JSON value.

    Raises
    ------
    ApiError
        400 ``MalformedJson`` when the body is not JSON text (NaN and Infinity included).
    """
    raw = req.get_body()
    if not raw or not raw.strip():
        return {}
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError as error:
        raise ApiError(
            400,
            "MalformedJson",
            f"The request body is not valid JSON: {error}.",
            [{"field": "body", "code": "json_invalid", "message": str(error)}],
        ) from error


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
    req: func.HttpRequest,
    query_model: type[ModelT],
    list_page: Callable[[ModelT], WireModel],
) -> func.HttpResponse:
    """Answer a list route: validate the query string, read one page, return it as JSON.

    Parameters
    ----------
    req : func.HttpRequest
        The GET request; its query string is validated against ``query_model``.
    query_model : type[ModelT]
        The route's query model (filters, ``top``, ``continuationToken``).
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
        400 ``ValidationFailed`` for a bad filter, 400 ``InvalidContinuationToken`` (naming
        the ``continuationToken`` field) for a token no list route of this API handed out.
    """
    query = validate_model(query_model, dict(req.params), source="query")
    try:
        page = await asyncio.to_thread(list_page, query)
    except ValueError as error:
        raise ApiError(
            400,
            "InvalidContinuationToken",
            "The continuation token is not one this API handed out; start from the first page.",
            [{"field": "continuationToken", "code": "invalid", "message": str(error)}],
        ) from error
    return json_response(page.to_wire())
