"""The base model every payload derives from, and helpers for payloads crossing durable boundaries.

Wire format: camelCase on output; on input camelCase, PascalCase (what .NET callers send) and
snake_case are all accepted. Payloads cross the durable SDK as plain JSON dicts
(``model.to_wire()``) and are validated on arrival, never as pydantic objects (the SDK's
custom-object encoding breaks on them).
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel, to_pascal
from pydantic_core import PydanticCustomError

__all__ = [
    "CONTINUATION_TOKEN_PATTERN",
    "MAX_CONTINUATION_TOKEN",
    "ContinuationToken",
    "QueryText",
    "UtcTime",
    "WireModel",
    "check_text",
    "comma_list",
    "decode_json_text",
    "failure_reason",
    "parse_event",
    "validation_details",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

# A payload raised with the Python client arrives as a JSON string of the JSON (protocol notes
# §2.6); further levels cover a caller that serialised the model itself before raising it. An
# event model always validates from an object, so decoding until one appears is safe there.
_MAX_ENCODING_LEVELS = 3

# Tokens are opaque: visible ASCII only (no space, control character or newline, so one can go
# back into a header), bounded.
CONTINUATION_TOKEN_PATTERN = r"^[!-~]+$"
MAX_CONTINUATION_TOKEN = 4096
MAX_QUERY_TEXT = 256


def _accepted_spellings(field_name: str) -> AliasChoices:
    return AliasChoices(to_camel(field_name), to_pascal(field_name), field_name)


class WireModel(BaseModel):
    """Base of every request, input, event, status and result model.

    Unknown fields are ignored rather than rejected: an instance started by an older or newer
    version of the code replays with today's models, and it must not fail on a field that
    was added or removed since.
    """

    model_config = ConfigDict(
        alias_generator=AliasGenerator(
            serialization_alias=to_camel,
            validation_alias=_accepted_spellings,
        ),
        populate_by_name=True,
        extra="ignore",
        # NaN and infinity are not JSON: a stored one would later be served as invalid JSON.
        allow_inf_nan=False,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        # Lax mode reads JSON true as 1 and false as 0 for a number field; a caller who sent
        # one meant something else (true started a 1-second approval).
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and _numbers_only(field.annotation):
                raise PydanticCustomError("number_type", "Input should be a number, not a boolean")
        return value

    def to_wire(self) -> dict[str, Any]:
        """Return the model as the JSON dict sent over HTTP and through the durable SDK.

        Returns
        -------
        dict[str, Any]
            ``model_dump(mode="json", by_alias=True)``: camelCase keys, JSON-safe values.
        """
        return self.model_dump(mode="json", by_alias=True)


def _numbers_only(annotation: Any) -> bool:
    """Whether every type but None that ``annotation`` allows is a number (bool aside)."""
    allowed = (
        get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    )
    kinds = [kind for kind in allowed if kind is not type(None)]
    return bool(kinds) and all(
        isinstance(kind, type) and issubclass(kind, int | float | Decimal) and kind is not bool
        for kind in kinds
    )


def check_text(value: str, max_length: int) -> str:
    """Return free text a caller sent (a header, a query value) trimmed, or raise ``ValueError``.

    Parameters
    ----------
    value : str
        The text as received.
    max_length : int
        The most characters accepted after trimming.

    Returns
    -------
    str
        The trimmed text.

    Raises
    ------
    ValueError
        When it is empty, too long, or holds a control character or a lone surrogate (what
        invalid UTF-8 in a header becomes), none of which can be stored or shown safely.
    """
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    if len(text) > max_length:
        raise ValueError(f"must be at most {max_length} characters")
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
        raise ValueError("must be printable UTF-8 text without control characters")
    return text


def _printable(value: str) -> str:
    return check_text(value, MAX_QUERY_TEXT) if value else value


QueryText = Annotated[
    str,
    Field(min_length=1, max_length=MAX_QUERY_TEXT),
    AfterValidator(_printable),
]
"""A free-text query value: 1-256 printable characters."""

ContinuationToken = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_CONTINUATION_TOKEN,
        pattern=CONTINUATION_TOKEN_PATTERN,
        description="The token of the previous page, passed back unchanged.",
    ),
]
"""An opaque continuation token: visible ASCII, at most 4,096 characters."""


def _within_utc_range(value: datetime) -> datetime:
    # 0001-01-01T00:00:00+01:00 is a valid ISO time whose UTC value is in year 0: storage
    # filters and the management API convert to UTC, which raises OverflowError there.
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("must fall between the years 1 and 9999 in UTC") from None
    return value


UtcTime = Annotated[datetime, AfterValidator(_within_utc_range)]
"""A date and time a caller sends (a filter bound): one that also exists in UTC."""


def comma_list(value: Any) -> Any:
    """Split a comma-separated query value into its items, each once, in first-seen order.

    The host hands a repeated query name to the function comma-joined, so
    ``runtimeStatus=Running&runtimeStatus=Running`` and ``runtimeStatus=Running,Running`` both
    arrive as ``"Running,Running"``; duplicates are collapsed so a long repetition costs nothing.
    A value that is not a string is returned unchanged for the model to judge.

    Parameters
    ----------
    value : Any
        The raw value.

    Returns
    -------
    Any
        ``list[str]`` for a string, else ``value``.
    """
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if isinstance(value, list):
        return list(dict.fromkeys(part for part in value if part != ""))
    return value


_FAILED_FUNCTION = re.compile(
    r"^(?P<kind>Activity|Orchestrator) function '(?P<name>[^']{1,128})' failed:\s*(?P<rest>.*)$"
)
_EXCEPTION_TYPE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt):\s*")
# Where a message starts showing the program rather than the problem.
_INTERNALS = re.compile(
    r"Traceback|File \"|\.py\b|site-packages|0x[0-9a-fA-F]{6,}|<[\w.]+ object|\{\"\$type"
)
# A file system path (not a URL's path): /a/b/c or C:\\a\\b.
_FILE_PATH = re.compile(r"(?<![:/\w])(?:[A-Za-z]:)?[/\\](?:[\w.-]+[/\\])+[\w.-]*")
MAX_REASON = 200


def failure_reason(error: object) -> str:
    """Return a short, user-facing reason for a failed activity or sub-orchestration.

    A failure reaches an orchestrator as an exception whose message is the host's reason
    followed by its details: ``Activity function 'x' failed:  ValueError: boom`` and then a
    JSON document holding the Python traceback with its file paths. Outputs and statuses that
    callers read keep only what a person can act on (``Activity 'x' failed: boom``); the whole
    error is for the log.

    Parameters
    ----------
    error : object
        The exception (or the failure text) as the orchestrator received it.

    Returns
    -------
    str
        At most 200 characters: which function failed and the first line of its message,
        without the exception's type, stack, file paths or object addresses.
    """
    text = str(error).strip().split("\n", 1)[0].strip()
    heads: list[str] = []
    while (found := _FAILED_FUNCTION.match(text)) is not None:
        heads.append(f"{found['kind']} '{found['name']}' failed")
        text = found["rest"].strip()
    text = _EXCEPTION_TYPE.sub("", text)
    internals = _INTERNALS.search(text)
    if internals is not None:
        text = text[: internals.start()]
    text = _FILE_PATH.sub("<path>", text).strip(" :,;-")
    reason = ": ".join([*heads, text] if text else heads) or "failed"
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def decode_json_text(value: Any, levels: int = 1) -> Any:
    """Undo the durable SDK's string encoding of a JSON value, leaving anything else as is.

    Parameters
    ----------
    value : Any
        A value as read back from the durable runtime: a dict, or a JSON text of it.
    levels : int
        How many levels of string encoding to undo at most. One is right for an orchestration
        input read from a status: decoding further would turn the string ``"123"`` into a
        number.

    Returns
    -------
    Any
        The decoded value. A string that is not JSON text is returned unchanged, so status
        views never fail on a payload they cannot read. ``NaN`` and ``Infinity`` are not JSON
        (the durable webhook stores them, as Newtonsoft reads them): a text holding one stays
        text, as an answer cannot carry them.
    """
    for _ in range(levels):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value, parse_constant=_refuse_constant)
        except ValueError:
            break
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_event(model: type[ModelT], payload: Any) -> ModelT:
    """Validate an external event's payload, however the runtime delivered it.

    Orchestrators call this on the result of ``wait_for_external_event``: an event raised over
    raw HTTP arrives as a dict, while one raised with the Python client arrives as a JSON
    string because the client encodes the data twice (azure-functions-durable-python #295).

    Parameters
    ----------
    model : type[ModelT]
        The event model.
    payload : Any
        The value ``wait_for_external_event`` produced: a dict, a model instance, a JSON string
        or a JSON string of a JSON string.

    Returns
    -------
    ModelT
        The validated event.

    Raises
    ------
    pydantic.ValidationError
        If the decoded payload does not match the model (a string that is not JSON is
        reported as the wrong type).
    """
    if isinstance(payload, model):
        return payload
    return model.model_validate(decode_json_text(payload, levels=_MAX_ENCODING_LEVELS))


def _format_location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def validation_details(error: ValidationError, root: str = "body") -> list[dict[str, str]]:
    """Turn a pydantic error into the ``details`` list of an HTTP error body.

    Parameters
    ----------
    error : pydantic.ValidationError
        The error raised by ``model_validate``.
    root : str
        The name reported when the whole value is wrong (e.g. a list sent where an object is
        expected).

    Returns
    -------
    list[dict[str, str]]
        One entry per problem: ``field`` (the path as the caller spelled it, e.g.
        ``cities[1]``), ``code`` (pydantic's error type) and ``message``. Input values are left
        out so an error never echoes a large or sensitive payload.
    """
    return [
        {
            "field": _format_location(tuple(item["loc"])) or root,
            "code": item["type"],
            "message": item["msg"],
        }
        for item in error.errors(include_url=False, include_input=False)
    ]
