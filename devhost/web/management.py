"""The built-in durable HTTP management API (protocol notes §7), served on both bases.

Dispatch, status codes and bodies follow ``HttpApiHandler.cs`` of
azure-functions-durable-extension 2.13.7 (``HandleRequestAsync`` and the ``Handle*Async``
methods), including its rough edges:

* a wrong method on a known route is a bare 404, as is an unknown route;
* raise-event, terminate, suspend, resume and rewind read the status first, so a missing or
  finished instance answers 404/410 before the request body is even looked at;
* the purge-by-filter 400 body is a bare JSON string, not a ``{"Message"}`` object;
* an unparseable ``bool``/``int``/date query value is ignored (``TryParse``), never a 400;
* query parameter names are case-insensitive (``NameValueCollection`` with
  ``OrdinalIgnoreCase``), runtime status names are not (``Enum.TryParse``);
* JSON bodies are read as Newtonsoft reads them (``NaN`` and ``Infinity`` included), at most
  64 levels deep (``JsonReader.MaxDepth``), else 400 ``Invalid JSON content``; unlike
  Newtonsoft, an integer of more than 4,300 digits is refused too, because the Python worker
  could not read it back.

Error bodies keep the real host's fields (``Message``, ``ExceptionMessage``, ``ExceptionType``,
``StackTrace``), but ``StackTrace`` is always null here: the real host sends .NET frames, ours
would be Python frames with this machine's file paths. A failure that is not the caller's
(a bug, storage down) is logged with a correlation ID, and only that ID is in the body.

We serve one task hub, so the ``taskHub``/``connection`` query parameters are accepted and
ignored.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from devhost.engine.api import (
    Backend,
    EngineError,
    InstanceAlreadyExists,
    InstanceNotFound,
    InvalidOperation,
    InvalidRequest,
    StatusOptions,
    refuse_entity_id,
)
from devhost.store.base import RUNTIME_STATUS_NAMES, InstanceQuery
from devhost.store.retrying import StorageUnavailable
from devhost.web.binding import check_status_headers, check_status_payload
from devhost.web.http_functions import request_origin

log = logging.getLogger("devhost.http")

RUNTIME_STATUSES = RUNTIME_STATUS_NAMES
_IN_PROGRESS = frozenset({"Running", "Pending", "ContinuedAsNew", "Suspended"})
_COMPLETED = frozenset({"Completed", "Terminated", "Canceled", "Failed"})  # IsCompletedStatus
_NOT_REWINDABLE = frozenset({"Completed", "Terminated", "Canceled"})

DEFAULT_PAGE_SIZE = 100
STATUS_RETRY_AFTER = "5"  # HandleGetStatusRequestAsync: "Ask for 5 seconds before retry"
CONTINUATION_HEADER = "x-ms-continuation-token"

ARGUMENT_ERROR = "One or more of the arguments submitted is incorrect"
GENERIC_ERROR = "Something went wrong while processing your request"
INVALID_JSON = "Invalid JSON content"
JSON_ONLY = "Only application/json request content is supported"
RESTART_NOT_FOUND = "InstanceId does not match a valid orchestration instance."
PURGE_NEEDS_FROM = "Please provide value for 'createdTimeFrom' parameter."
STORAGE_UNAVAILABLE = "The task hub's storage is unavailable; try again in {seconds} seconds."

# The .NET exception type the real host would name in "ExceptionType" for each engine error.
_DOTNET_TYPES: dict[type[BaseException], str] = {
    InvalidRequest: "System.ArgumentException",
    InstanceNotFound: "System.ArgumentException",
    InstanceAlreadyExists: "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
    InvalidOperation: "System.InvalidOperationException",
    json.JSONDecodeError: "Newtonsoft.Json.JsonReaderException",
    ValueError: "System.ArgumentException",
}
# Newtonsoft's JsonReader.MaxDepth default: deeper JSON is a JsonReaderException.
MAX_JSON_DEPTH = 64


# -- responses --------------------------------------------------------------------------------


def _special_floats_as_strings(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _special_floats_as_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_special_floats_as_strings(item) for item in value]
    return value


def to_json(value: Any) -> str:
    """Compact JSON, non-ASCII kept, like ``JsonConvert.SerializeObject``.

    NaN and infinities (which a JSON body may carry into a stored payload, as Newtonsoft reads
    them) are written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``:
    Newtonsoft's default ``FloatFormatHandling.String``, so every answer is valid JSON.
    """
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        fixed = _special_floats_as_strings(value)
        return json.dumps(fixed, separators=(",", ":"), ensure_ascii=False)


def json_response(
    status: int, value: Any, headers: dict[str, str] | None = None, *, raw: str | None = None
) -> web.Response:
    """A JSON body with ``Content-Type: application/json; charset=utf-8``."""
    return web.Response(
        status=status,
        body=(raw if raw is not None else to_json(value)).encode("utf-8"),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def bare_response(status: int) -> web.Response:
    """A response without a body (the host's 404, 410, 202 for commands)."""
    return web.Response(status=status)


def error_response(status: int, message: str, exc: BaseException | None = None) -> web.Response:
    """``{"Message"}``, or with an exception ``{"Message","ExceptionMessage",...}``.

    ``exc`` is one this module or the engine raised about the request (its message is meant
    for the caller); anything else goes through :func:`internal_error_response`.
    """
    body: dict[str, Any] = {"Message": message}
    if exc is not None:
        kind = next((t for t in type(exc).__mro__ if t in _DOTNET_TYPES), None)
        body["ExceptionMessage"] = str(exc)
        body["ExceptionType"] = _DOTNET_TYPES[kind] if kind else "System.Exception"
        body["StackTrace"] = None
    return json_response(status, body)


def internal_error_response(request: web.Request) -> web.Response:
    """The 500 of ``HandleRequestAsync``'s last catch, for a failure that is not the caller's.

    Logs the exception being handled with a new correlation ID; the body carries that ID, not
    the exception.
    """
    correlation_id = uuid.uuid4().hex
    log.exception(
        "Management API request failed: %s %s [correlation ID %s]",
        request.method,
        request.path,
        correlation_id,
    )
    return json_response(
        500,
        {
            "Message": GENERIC_ERROR,
            "ExceptionMessage": f"The error was logged under correlation ID {correlation_id}.",
            "ExceptionType": "System.Exception",
            "StackTrace": None,
        },
    )


class JsonContentError(json.JSONDecodeError):
    """JSON this host does not take: deeper than Newtonsoft's MaxDepth, or an integer longer
    than the Python worker can read back."""


def _readable_int(text: str) -> int:
    # Newtonsoft reads any integer (BigInteger); the Python worker that later reads the stored
    # text cannot convert one of more than sys.get_int_max_str_digits() digits (a ValueError,
    # not a decode error), so such a payload is refused here rather than stored unreadable.
    if len(text.lstrip("-")) > sys.get_int_max_str_digits():
        raise JsonContentError("An integer has more digits than the worker can read.", text, 0)
    return int(text)


def read_json(text: str) -> Any:
    """Parse a request body as the real host reads it.

    Raises
    ------
    json.JSONDecodeError
        When the text is not JSON, nests deeper than 64 levels, or holds an integer longer than
        the Python worker can read.
    """
    try:
        value = json.loads(text, parse_int=_readable_int)
    except RecursionError:
        raise JsonContentError(
            f"The reader's MaxDepth of {MAX_JSON_DEPTH} has been exceeded.", text, 0
        ) from None
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise JsonContentError(
                    f"The reader's MaxDepth of {MAX_JSON_DEPTH} has been exceeded.", text, 0
                )
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return value


def engine_error_response(exc: EngineError) -> web.Response:
    """Map an engine error by its ``status`` as ``HandleRequestAsync``'s catch blocks do."""
    if exc.status in (404, 410):
        return bare_response(exc.status)
    if exc.status == 400:
        return error_response(400, ARGUMENT_ERROR, exc)
    return error_response(exc.status, GENERIC_ERROR, exc)


# -- query parsing (the host's TryParse helpers) -----------------------------------------------


class QueryParams:
    """Case-insensitive query values; repeated names read comma-joined."""

    def __init__(self, request: web.Request) -> None:
        self._pairs = [(k.lower(), v.strip()) for k, v in request.query.items()]

    def getall(self, name: str) -> list[str]:
        """Every value of ``name``."""
        key = name.lower()
        return [v for k, v in self._pairs if k == key]

    def get(self, name: str) -> str | None:
        """``NameValueCollection[name]``: the values joined with commas, or None."""
        values = self.getall(name)
        return ",".join(values) if values else None

    def get_bool(self, name: str) -> bool | None:
        """``bool.TryParse``: True/False in any case, else None."""
        value = (self.get(name) or "").lower()
        return {"true": True, "false": False}.get(value)

    def get_int(self, name: str) -> int | None:
        """``int.TryParse``: a 32-bit integer, else None."""
        value = self.get(name) or ""
        if not re.fullmatch(r"[+-]?\d+", value):
            return None
        number = int(value)
        return number if -(2**31) <= number < 2**31 else None

    def get_seconds(self, name: str) -> float | None:
        """``double.TryParse`` of a number of seconds, else None."""
        value = self.get(name) or ""
        if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value):
            return None
        return float(value)

    def get_datetime(self, name: str) -> datetime | None:
        """``DateTime.TryParse`` of an ISO-8601-ish value, as an aware UTC datetime."""
        return parse_datetime(self.get(name))

    def get_statuses(self, name: str = "runtimeStatus") -> list[str]:
        """Runtime status names from comma lists, possibly repeated; unknown ones dropped.

        Each status is kept once: the real host builds one storage filter condition per
        value, so a long repetition would only cost the query, never change its answer.
        """
        found: list[str] = []
        for raw in self.getall(name):
            for value in raw.split(","):
                value = value.strip()
                if value in RUNTIME_STATUSES:
                    found.append(value)
                elif re.fullmatch(r"\d{1,2}", value) and int(value) < len(RUNTIME_STATUSES):
                    found.append(RUNTIME_STATUSES[int(value)])
        return list(dict.fromkeys(found))


def parse_datetime(value: str | None) -> datetime | None:
    """Read a date/time the way callers send it; naive values are taken as UTC.

    Accepts ``2024-01-01``, ``2024-01-01T10:00:00``, a space instead of ``T``, ``Z`` or an
    offset, and .NET's seven fractional digits. An offset's ``+`` sent unencoded arrives as a
    space (query decoding), so ``10:00:00 01:00`` is read as ``10:00:00+01:00``.
    """
    if not value:
        return None
    text = value.strip()
    text = re.sub(r"^(\S+[T ]\d{1,2}:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d:?\d\d)$", r"\1+\2", text)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        # OverflowError: the UTC value falls outside years 1-9999, where TryParse fails too.
        return None


async def _body_text(request: web.Request) -> str:
    raw = await request.read()
    return raw.decode("utf-8-sig", errors="replace")


def _media_type(request: web.Request) -> str:
    # aiohttp reports a missing Content-Type as application/octet-stream.
    if "Content-Type" not in request.headers:
        return ""
    return request.content_type.lower()


# -- the API ----------------------------------------------------------------------------------


class ManagementApi:
    """The handlers of §7.1 over a :class:`~devhost.engine.api.Backend`.

    Parameters
    ----------
    backend : Backend
        The engine.
    system_key : str, optional
        The ``durabletask_extension`` key when keys are enforced: the check-status URLs carry
        it in ``code=``, as the real host's do.
    """

    def __init__(self, backend: Backend, system_key: str | None = None) -> None:
        self.backend = backend
        self.system_key = system_key

    async def handle(self, request: web.Request, segments: list[str]) -> web.Response:
        """Answer a request whose path below the base is ``segments`` (decoded)."""
        try:
            return await self._dispatch(request, segments)
        except EngineError as exc:
            return engine_error_response(exc)
        except web.HTTPException:
            raise  # the host's own answers (413 for a body over the limit)
        except StorageUnavailable as exc:
            # Not the caller's mistake, and it passes: the store reports the outage in the log
            # once, so the request is not logged again.
            return json_response(
                503,
                {"Message": STORAGE_UNAVAILABLE.format(seconds=exc.retry_after)},
                {"Retry-After": str(exc.retry_after)},
            )
        except Exception:
            return internal_error_response(request)

    async def _dispatch(self, request: web.Request, segs: list[str]) -> web.Response:
        method = request.method.upper()
        controller = segs[0].lower() if segs else ""
        count = len(segs)
        # Templates in HandleRequestAsync's order; literal segments compare case-insensitively.
        if controller == "orchestrators" and count in (2, 3):
            if method != "POST":
                return bare_response(404)
            return await self.start(request, segs[1], segs[2] if count == 3 else None)
        if controller == "entities" and count <= 3:
            name = segs[1] if count > 1 else ""
            key = segs[2] if count > 2 else ""
            if method == "GET":
                if key:
                    return await self.read_entity(request, name, key)
                return await self.list_entities(request, name or None)
            if method in ("POST", "DELETE"):
                return await self.signal_entity(request, name, key)
            return bare_response(404)
        if controller == "instances" and count <= 3:
            return await self._instances(request, method, segs[1:])
        if controller == "instances" and count == 4 and segs[2].lower() == "raiseevent":
            if method != "POST":
                return bare_response(404)
            return await self.raise_event(request, segs[1], segs[3])
        if controller == "makeprimary" and count == 1:
            return bare_response(200)  # app-lease feature; nothing to do with one local host
        return bare_response(404)

    async def _instances(self, request: web.Request, method: str, rest: list[str]) -> web.Response:
        if not rest:
            if method == "GET":
                return await self.list_instances(request)
            if method == "DELETE":
                return await self.purge_many(request)
            return bare_response(404)
        instance_id = rest[0]
        if len(rest) == 1:
            if method == "GET":
                return await self.get_status(request, instance_id)
            if method == "DELETE":
                return await self.purge(request, instance_id)
            return bare_response(404)
        if method != "POST":
            return bare_response(404)
        operation = rest[1].lower()
        if operation == "restart":
            return await self.restart(request, instance_id)
        if operation in ("terminate", "suspend", "resume", "rewind"):
            return await self.command(request, instance_id, operation)
        return bare_response(404)

    # -- orchestrations ---------------------------------------------------------------------------

    async def start(
        self, request: web.Request, function_name: str, instance_id: str | None
    ) -> web.Response:
        """POST orchestrators/{functionName}/{instanceId?}: start, answer 202 check-status."""
        text = await _body_text(request)
        input_json: str | None = None
        if text.strip():
            try:
                parsed = read_json(text)
            except json.JSONDecodeError as exc:
                return error_response(400, INVALID_JSON, exc)
            # The host stores the re-serialised body; the text as received is the same JSON
            # value (for the Python client: a JSON string literal, quotes included).
            if parsed is not None:
                input_json = text.strip()
        new_id = await self.backend.start_new(function_name, instance_id or None, input_json)
        return await self._check_status_or_wait(request, new_id, ARGUMENT_ERROR)

    async def _check_status_or_wait(
        self, request: web.Request, instance_id: str, argument_message: str
    ) -> web.Response:
        query = QueryParams(request)
        timeout = query.get_seconds("timeout")
        interval = query.get_seconds("pollingInterval")
        if timeout is None or interval is None:
            return self.check_status_response(request, instance_id)
        if interval > timeout:
            # WaitForCompletionOrCreateCheckStatusResponseAsync throws ArgumentException.
            problem = ValueError(
                f"Total timeout {timeout:g} should be bigger than retry timeout {interval:g}"
            )
            return error_response(400, argument_message, problem)
        status = await self.backend.wait_for_completion(instance_id, timeout)
        runtime_status = status.get("runtimeStatus") if status else None
        if status is not None and runtime_status == "Completed":
            return json_response(200, status.get("output"))
        if runtime_status in ("Canceled", "Failed", "Terminated"):
            return await self.get_status(request, instance_id, return_500_on_failure=False)
        return self.check_status_response(request, instance_id)

    def check_status_response(self, request: web.Request, instance_id: str) -> web.Response:
        """202 with the management URLs, ``Location`` and ``Retry-After: 10``."""
        payload = check_status_payload(
            request_origin(request), instance_id, self.backend.task_hub, system_key=self.system_key
        )
        return json_response(202, payload, check_status_headers(payload))

    async def get_status(
        self,
        request: web.Request,
        instance_id: str,
        *,
        return_500_on_failure: bool | None = None,
    ) -> web.Response:
        """GET instances/{id}: 202 while in progress, 200 when done, 404 if unknown."""
        query = QueryParams(request)
        options = StatusOptions(
            show_history=bool(query.get_bool("showHistory")),
            show_history_output=bool(query.get_bool("showHistoryOutput")),
            show_input=query.get_bool("showInput") is not False,
        )
        if return_500_on_failure is None:
            return_500_on_failure = bool(query.get_bool("returnInternalServerErrorOnFailure"))
        status = await self.backend.get_status(instance_id, options)
        if status is None:
            return bare_response(404)
        runtime_status = status.get("runtimeStatus")
        headers: dict[str, str] = {}
        if runtime_status in _IN_PROGRESS:
            code = 202
            headers = {"Location": str(request.url), "Retry-After": STATUS_RETRY_AFTER}
        elif runtime_status == "Failed":
            code = 500 if return_500_on_failure else 200
        elif runtime_status in _COMPLETED:
            code = 200
        else:
            log.error("Unknown runtime state '%s'.", runtime_status)
            code = 500
        return json_response(code, status, headers)

    async def list_instances(self, request: web.Request) -> web.Response:
        """GET instances: one page of statuses; the continuation header is always present."""
        query = QueryParams(request)
        prefix = query.get("instanceIdPrefix")
        condition = InstanceQuery(
            runtime_status=query.get_statuses(),
            created_from=query.get_datetime("createdTimeFrom"),
            created_to=query.get_datetime("createdTimeTo"),
            instance_id_prefix=prefix or None,
        )
        top = query.get_int("top")
        given = request.headers.get(CONTINUATION_HEADER) or None
        try:
            page, token = await self.backend.list_instances(
                condition,
                top if top and top > 0 else DEFAULT_PAGE_SIZE,
                given,
                query.get_bool("showInput") is not False,
            )
        except ValueError as exc:
            return _token_refused(given, exc)
        return json_response(200, page, {CONTINUATION_HEADER: token or ""})

    async def purge(self, request: web.Request, instance_id: str) -> web.Response:
        """DELETE instances/{id}: 404 if unknown, else 200 ``{"instancesDeleted": n}``."""
        # No status read first: on an instance not in memory that loads its whole history (on
        # Azurite a scan of the History table), only for the purge to delete it.
        try:
            deleted = await self.backend.purge(instance_id)
        except InstanceNotFound:
            return bare_response(404)
        return json_response(200, {"instancesDeleted": deleted})

    async def purge_many(self, request: web.Request) -> web.Response:
        """DELETE instances: purge by creation time and status; 404 when nothing matched."""
        query = QueryParams(request)
        created_from = query.get_datetime("createdTimeFrom")
        if created_from is None:
            # CreateResponse(BadRequest, string): the body is a JSON string, not {"Message"}.
            return json_response(400, PURGE_NEEDS_FROM)
        created_to = query.get_datetime("createdTimeTo") or datetime.now(UTC)
        deleted = await self.backend.purge_many(created_from, created_to, query.get_statuses())
        if not deleted:
            return bare_response(404)
        return json_response(200, {"instancesDeleted": deleted})

    async def raise_event(
        self, request: web.Request, instance_id: str, event_name: str
    ) -> web.Response:
        """POST instances/{id}/raiseEvent/{name}: the body must be JSON; 202."""
        refuse_entity_id(instance_id)  # before the status, which shows an entity as an instance
        status = await self._status_of(instance_id)
        if status is None:
            return bare_response(404)
        if status.get("runtimeStatus") in _COMPLETED:
            return bare_response(410)
        if _media_type(request) != "application/json":
            return error_response(400, JSON_ONLY)
        text = await _body_text(request)
        try:
            read_json(text)
        except json.JSONDecodeError as exc:
            return error_response(400, INVALID_JSON, exc)
        await self.backend.raise_event(instance_id, event_name, text.strip())
        return bare_response(202)

    async def command(self, request: web.Request, instance_id: str, operation: str) -> web.Response:
        """POST instances/{id}/terminate|suspend|resume|rewind?reason=: 202, 404 or 410."""
        refuse_entity_id(instance_id)
        status = await self._status_of(instance_id)
        if status is None:
            return bare_response(404)
        finished = _NOT_REWINDABLE if operation == "rewind" else _COMPLETED
        if status.get("runtimeStatus") in finished:
            return bare_response(410)
        reason = QueryParams(request).get("reason")
        await getattr(self.backend, operation)(instance_id, reason)
        return bare_response(202)

    async def restart(self, request: web.Request, instance_id: str) -> web.Response:
        """POST instances/{id}/restart: 202 check-status for the restarted instance."""
        new_instance_id = QueryParams(request).get_bool("restartWithNewInstanceId")
        try:
            new_id = await self.backend.restart(instance_id, new_instance_id is not False)
        except (InstanceNotFound, InvalidRequest) as exc:
            # HandleRestartInstanceRequestAsync turns the ArgumentException into this 400.
            return error_response(400, RESTART_NOT_FOUND, exc)
        return await self._check_status_or_wait(request, new_id, RESTART_NOT_FOUND)

    async def _status_of(self, instance_id: str) -> dict[str, Any] | None:
        return await self.backend.get_status(instance_id, StatusOptions(show_input=False))

    # -- entities ---------------------------------------------------------------------------------

    async def read_entity(self, request: web.Request, name: str, key: str) -> web.Response:
        """GET entities/{name}/{key}: 200 with the state, 404 if the entity does not exist."""
        if key == "$":  # HandleGetEntityRequestAsync: "$" stands for the empty key
            key = ""
        try:
            exists, state = await self.backend.read_entity(name.lower(), key)
        except InvalidRequest as exc:
            return error_response(400, str(exc))
        if not exists:
            return bare_response(404)
        try:
            return json_response(200, json.loads(state) if state is not None else None)
        except json.JSONDecodeError:
            return json_response(200, state)

    async def list_entities(self, request: web.Request, name: str | None) -> web.Response:
        """GET entities/{name?}: one page of entity statuses."""
        query = QueryParams(request)
        top = query.get_int("top")
        given = request.headers.get(CONTINUATION_HEADER) or None
        try:
            page, token = await self.backend.list_entities(
                name.lower() if name else None,
                top if top and top > 0 else DEFAULT_PAGE_SIZE,
                given,
                bool(query.get_bool("fetchState")),
            )
        except ValueError as exc:
            return _token_refused(given, exc)
        # The Backend takes no time window, so lastOperationTimeFrom/To filter the page here.
        after = query.get_datetime("lastOperationTimeFrom")
        before = query.get_datetime("lastOperationTimeTo")
        if after or before:
            page = [e for e in page if _within(e.get("lastOperationTime"), after, before)]
        return json_response(200, page, {CONTINUATION_HEADER: token or ""})

    async def signal_entity(self, request: web.Request, name: str, key: str) -> web.Response:
        """POST entities/{name}/{key}?op= (DELETE: op "delete"): 202."""
        # Unlike reads, signals take "$" literally: only HandleGetEntityRequestAsync maps it.
        if not name:
            return error_response(
                400, "Invalid entity id: entity name must not be a null or empty string."
            )
        operation = (
            "delete" if request.method.upper() == "DELETE" else QueryParams(request).get("op")
        )
        raw = await request.read()
        input_json: str | None = None
        if raw:
            text = raw.decode("utf-8-sig", errors="replace")
            if _media_type(request) == "application/json":
                try:
                    read_json(text)
                except json.JSONDecodeError as exc:
                    return error_response(400, f"Could not parse JSON content: {exc}")
                input_json = text.strip()
            else:
                # Other content types are passed on as a plain string.
                input_json = to_json(text)
        try:
            await self.backend.signal_entity(name.lower(), key, operation or "", input_json)
        except InvalidRequest as exc:
            # The entity route's own catch: 400 with just the message.
            return error_response(400, str(exc))
        return bare_response(202)


def _token_refused(token: str | None, exc: ValueError) -> web.Response:
    """400 for a continuation token the store did not hand out (its decoding raised).

    The real host passes the token on to the table service, which refuses it, and answers 500
    (the storage exception reaches ``HandleRequestAsync``'s last catch); it is the caller's
    mistake, so it is a 400 here. Without a token the ValueError is a fault of the host's own.
    """
    if token is None:
        raise exc
    return error_response(400, ARGUMENT_ERROR, ValueError("The continuation token is not valid."))


def _within(value: Any, after: datetime | None, before: datetime | None) -> bool:
    when = parse_datetime(value) if isinstance(value, str) else None
    if when is None:
        return True
    return (after is None or when >= after) and (before is None or when <= before)
