"""The input boundary of the HTTP API: every route value, header, query value and body is read here.

Each HTTP function declares what it reads with :func:`endpoint`, closest to the function::

    @bp.route(route="orders/{orderId}/cancel", methods=["POST"])
    @bp.durable_client_input(client_name="client")
    @endpoint(path={"orderId": "order"}, body=JsonBody(CancelOrderEvent),
              responses={202: OrderEventAccepted}, errors=(404, 409))
    async def cancel_order(req, client): ...

Before the function runs, the declaration is checked against the request, in this order: the
body's size (413) and encoding (415), then route values (each against the ID grammar of
``models.ids``, or a bounded integer), headers, the query string and the body (parsed by
``blueprints.json_limits``, validated by its model), each failure a 400 naming the field. The
function then reads only checked values, through :func:`path_id`, :func:`path_int`,
:func:`read_header`, :func:`read_query`, :func:`read_body` and friends; it never touches
``req.route_params``, ``req.params``, ``req.headers`` or ``req.get_body()`` itself (a test
walks the source to hold every handler to that). The same declaration is what
``blueprints.openapi`` publishes.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel

from blueprints.http_errors import ApiError, json_errors, validate_model
from blueprints.http_headers import Header
from blueprints.json_limits import JsonRejected, parse_json
from models.ids import MAX_LENGTHS, id_problem

__all__ = [
    "MAX_JSON_BYTES",
    "Endpoint",
    "HandlerT",
    "IntParam",
    "JsonBody",
    "PathParam",
    "TextBody",
    "endpoint",
    "endpoint_of",
    "path_id",
    "path_int",
    "read_body",
    "read_header",
    "read_json",
    "read_query",
    "read_text",
]

ModelT = TypeVar("ModelT", bound=BaseModel)
HandlerT = TypeVar("HandlerT", bound=Callable[..., Awaitable[func.HttpResponse]])

MAX_JSON_BYTES = 1024 * 1024
_UTF8_CHARSETS = ("utf-8", "utf8", "us-ascii")


@dataclass(frozen=True)
class IntParam:
    """A route value that is a whole number in ``[minimum, maximum]`` (ASCII digits only)."""

    minimum: int
    maximum: int
    description: str = ""


@dataclass(frozen=True)
class JsonBody:
    """A JSON body; validated by ``model``, or any JSON value within the limits when None."""

    model: type[BaseModel] | None
    max_bytes: int = MAX_JSON_BYTES
    description: str = ""


@dataclass(frozen=True)
class TextBody:
    """A UTF-8 text body (e.g. JSON lines) of at most ``max_bytes``, in one of ``media_types``."""

    media_types: tuple[str, ...]
    max_bytes: int = MAX_JSON_BYTES
    description: str = ""


PathParam = str | IntParam  # a str names a kind of models.ids.MAX_LENGTHS


@dataclass(frozen=True)
class Endpoint:
    """What one HTTP function reads and answers; checked on every call, published as OpenAPI."""

    path: Mapping[str, PathParam] = field(default_factory=dict)
    query: type[BaseModel] | None = None
    headers: tuple[Header, ...] = ()
    body: JsonBody | TextBody | None = None
    responses: Mapping[int, type[BaseModel] | None] = field(default_factory=dict)
    errors: tuple[int, ...] = ()

    def check(self, req: func.HttpRequest) -> _Checked:
        """Check the request against this declaration; raise the first problem as an ApiError."""
        raw = _raw_body(req, self.body)
        checked = _Checked(self)
        for name, spec in self.path.items():
            checked.path[name] = _path_value(req.route_params.get(name), name, spec)
        for wanted in self.headers:
            checked.headers[wanted.name.lower()] = wanted.read(req.headers.get(wanted.name))
        if self.query is not None:
            checked.query = validate_model(self.query, dict(req.params), source="query")
        if isinstance(self.body, JsonBody):
            value = _json(raw)
            checked.body = validate_model(self.body.model, value) if self.body.model else value
        elif isinstance(self.body, TextBody):
            checked.body = _text(raw)
        return checked


@dataclass
class _Checked:
    endpoint: Endpoint
    path: dict[str, str | int] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    query: BaseModel | None = None
    body: Any = None


_CHECKED: weakref.WeakKeyDictionary[func.HttpRequest, _Checked] = weakref.WeakKeyDictionary()


def _invalid(
    field_name: str, code: str, message: str, status: int = 400, error: str = "ValidationFailed"
) -> ApiError:
    return ApiError(
        status,
        error,
        f"{field_name}: {message}.",
        [{"field": field_name, "code": code, "message": message}],
    )


def _path_value(value: str | None, name: str, spec: PathParam) -> str | int:
    if isinstance(spec, IntParam):
        # ASCII digits only: str.isdigit() accepts "²", which int() refuses.
        text = value or ""
        if not (text.isascii() and text.isdigit() and len(text) <= len(str(spec.maximum))):
            raise _invalid(name, "int_parsing", "must be a whole number")
        number = int(text)
        if not spec.minimum <= number <= spec.maximum:
            raise _invalid(name, "out_of_range", f"must be {spec.minimum} to {spec.maximum}")
        return number
    problem = id_problem(value, spec)
    if problem is not None:
        raise _invalid(name, "invalid_id", problem)
    assert value is not None
    return value


def _charset(req: func.HttpRequest) -> str:
    _, _, parameters = (req.headers.get("Content-Type") or "").partition(";")
    for part in parameters.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return "utf-8"


def _raw_body(req: func.HttpRequest, spec: JsonBody | TextBody | None) -> bytes:
    if spec is None:
        return b""  # a body on a route that takes none is not read
    raw = req.get_body() or b""
    if len(raw) > spec.max_bytes:
        raise _invalid(
            "body", "too_large", f"must be at most {spec.max_bytes} bytes", 413, "PayloadTooLarge"
        )
    encoding = (req.headers.get("Content-Encoding") or "").strip().lower()
    if encoding not in ("", "identity"):
        # The host hands the body on as sent; nothing here decompresses it.
        raise _invalid(
            "Content-Encoding",
            "unsupported_encoding",
            "send the body uncompressed",
            415,
            "UnsupportedContentEncoding",
        )
    # The media type itself is not enforced (clients often send none, or octet-stream): the
    # body is read in the route's format whatever it says; only a charset other than UTF-8
    # cannot be read.
    if raw.strip() and _charset(req) not in _UTF8_CHARSETS:
        raise _invalid(
            "Content-Type",
            "unsupported_charset",
            "the charset must be utf-8",
            415,
            "UnsupportedContentEncoding",
        )
    return raw


def _json(raw: bytes) -> Any:
    # An empty body reads as {} so validation names each missing field, and a model whose
    # fields all have defaults is usable without a body.
    if not raw.strip():
        return {}
    try:
        return parse_json(raw)
    except JsonRejected as error:
        raise ApiError(
            400,
            "MalformedJson",
            f"The request body is not acceptable JSON: {error}.",
            [{"field": "body", "code": error.code, "message": str(error)}],
        ) from error


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # Refused, not replaced: a U+FFFD would make a corrupt record look valid.
        line = raw[: error.start].count(b"\n") + 1
        where = f"line {line} is not valid UTF-8 text"
        raise ApiError(
            400,
            "InvalidEncoding",
            f"The body must be UTF-8 text: {where}.",
            [{"field": "body", "code": "invalid_utf8", "message": where}],
        ) from None


def _request_in(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> func.HttpRequest:
    for value in (*args, *kwargs.values()):
        if isinstance(value, func.HttpRequest):
            return value
    raise TypeError("an HTTP function takes the request as an argument")


def endpoint(
    *,
    path: Mapping[str, PathParam] | None = None,
    query: type[BaseModel] | None = None,
    headers: tuple[Header, ...] = (),
    body: JsonBody | TextBody | None = None,
    responses: Mapping[int, type[BaseModel] | None],
    errors: tuple[int, ...] = (),
) -> Callable[[HandlerT], HandlerT]:
    """Declare what an HTTP function reads and answers, and check every request against it.

    Parameters
    ----------
    path : Mapping[str, str | IntParam] | None
        Each route value: a kind of ``models.ids`` (``"instance"``, ``"order"``...) or an
        :class:`IntParam`.
    query : type[BaseModel] | None
        The query string's model (unknown names, such as the platform's ``code``, are ignored).
    headers : tuple[Header, ...]
        The request headers the function reads (``blueprints.http_headers``).
    body : JsonBody | TextBody | None
        The body; None means the body is not read.
    responses : Mapping[int, type[BaseModel] | None]
        Each success status and the model of its body (None: no body).
    errors : tuple[int, ...]
        The error statuses the function itself answers (404, 409...); 400, 413, 415 and 500
        follow from the declaration.

    Returns
    -------
    Callable
        A decorator; the decorated function answers any failure in the one error shape
        (``blueprints.http_errors.json_errors``).
    """
    for name, spec in (path or {}).items():
        if isinstance(spec, str) and spec not in MAX_LENGTHS:
            raise ValueError(f"route value '{name}': unknown ID kind '{spec}'")
    contract = Endpoint(dict(path or {}), query, headers, body, dict(responses), errors)

    def decorate(handler: HandlerT) -> HandlerT:
        @functools.wraps(handler)
        async def checked(*args: Any, **kwargs: Any) -> func.HttpResponse:
            req = _request_in(args, kwargs)
            _CHECKED[req] = contract.check(req)
            try:
                return await handler(*args, **kwargs)
            finally:
                _CHECKED.pop(req, None)

        wrapper = json_errors(checked)
        wrapper.__endpoint__ = contract  # type: ignore[attr-defined]  # read by endpoint_of
        return wrapper  # type: ignore[return-value]  # same signature (functools.wraps)

    return decorate


def endpoint_of(function: Callable[..., Any]) -> Endpoint | None:
    """Return the declaration of an HTTP function (or of the durable client's wrapper of it)."""
    inner = getattr(function, "client_function", function)
    found = getattr(inner, "__endpoint__", None)
    return found if isinstance(found, Endpoint) else None


def _checked(req: func.HttpRequest) -> _Checked:
    try:
        return _CHECKED[req]
    except KeyError:
        raise LookupError("the request was not checked by @endpoint") from None


def path_id(req: func.HttpRequest, name: str) -> str:
    """Return a route value declared as an ID kind, as checked."""
    value = _checked(req).path[name]
    assert isinstance(value, str), f"route value '{name}' is not declared as an ID"
    return value


def path_int(req: func.HttpRequest, name: str) -> int:
    """Return a route value declared as an :class:`IntParam`, as checked."""
    value = _checked(req).path[name]
    assert isinstance(value, int), f"route value '{name}' is not declared as a number"
    return value


def read_header(req: func.HttpRequest, spec: Header) -> Any:
    """Return a declared header's checked value (None when the request did not send it)."""
    checked = _checked(req)
    assert spec in checked.endpoint.headers, f"header '{spec.name}' is not declared"
    return checked.headers[spec.name.lower()]


def read_query(req: func.HttpRequest, model: type[ModelT]) -> ModelT:
    """Return the checked query string as its declared model."""
    value = _checked(req).query
    assert isinstance(value, model), f"the query is not declared as {model.__name__}"
    return value


def read_body(req: func.HttpRequest, model: type[ModelT]) -> ModelT:
    """Return the checked JSON body as its declared model."""
    value = _checked(req).body
    assert isinstance(value, model), f"the body is not declared as {model.__name__}"
    return value


def read_json(req: func.HttpRequest) -> Any:
    """Return the checked JSON body of a route declared with ``JsonBody(None)``."""
    checked = _checked(req)
    assert isinstance(checked.endpoint.body, JsonBody) and checked.endpoint.body.model is None
    return checked.body


def read_text(req: func.HttpRequest) -> str:
    """Return the checked text body of a route declared with :class:`TextBody`."""
    checked = _checked(req)
    assert isinstance(checked.endpoint.body, TextBody), "the body is not declared as text"
    assert isinstance(checked.body, str)
    return checked.body
