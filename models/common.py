"""The base model every payload derives from, and helpers for payloads crossing durable boundaries.

Wire format: camelCase on output; on input camelCase, PascalCase (what .NET callers send) and
snake_case are all accepted. Payloads cross the durable SDK as plain JSON dicts
(``model.to_wire()``) and are validated on arrival, never as pydantic objects (the SDK's
custom-object encoding breaks on them).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel, to_pascal

__all__ = [
    "WireModel",
    "decode_json_text",
    "parse_event",
    "validation_details",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

# A payload raised with the Python client arrives as a JSON string of the JSON (protocol notes
# §2.6); further levels cover a caller that serialised the model itself before raising it. An
# event model always validates from an object, so decoding until one appears is safe there.
_MAX_ENCODING_LEVELS = 3


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
    )

    def to_wire(self) -> dict[str, Any]:
        """Return the model as the JSON dict sent over HTTP and through the durable SDK.

        Returns
        -------
        dict[str, Any]
            ``model_dump(mode="json", by_alias=True)``: camelCase keys, JSON-safe values.
        """
        return self.model_dump(mode="json", by_alias=True)


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
        views never fail on a payload they cannot read.
    """
    for _ in range(levels):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


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
