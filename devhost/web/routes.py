"""Route templates of HTTP-triggered functions and the table that picks a function for a request.

The Functions host routes user HTTP triggers with ASP.NET Core routing: the template is
``{routePrefix}/{route}`` (``route`` defaults to the function name), literal segments compare
case-insensitively, parameters may carry inline constraints (``{id:int}``), be optional
(``{id?}``), have a default (``{page=1}``) or catch the rest of the path (``{*rest}``). When two
templates match, the more specific one wins, segment by segment: a literal beats a constrained
parameter, which beats a plain parameter, which beats a catch-all (ASP.NET Core
``RoutePrecedence.ComputeInbound``). So ``api/documents/search`` is served by the function whose
route is ``documents/search`` even when ``documents/{id}`` was registered first.

A request whose path matches no template for its method gets 404, not 405: the host's
method check is a route constraint, so a wrong method is simply "no route".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import unquote

if TYPE_CHECKING:
    from devhost.app.loader import FunctionInfo

T = TypeVar("T")

# Every method the host accepts when a function lists none (Core Tools prints this list too).
ALL_METHODS = ("GET", "POST", "DELETE", "HEAD", "PATCH", "PUT", "OPTIONS", "TRACE")


class RouteTemplateError(ValueError):
    """A route template that cannot be parsed; the message names the template."""


@dataclass(frozen=True)
class RouteParameter:
    """One ``{...}`` of a template."""

    name: str
    optional: bool = False
    default: str | None = None
    catch_all: bool = False
    constraints: tuple[tuple[str, str | None], ...] = ()

    def accepts(self, value: str) -> bool:
        """Whether ``value`` satisfies every inline constraint."""
        return all(_constraint_ok(kind, arg, value) for kind, arg in self.constraints)


@dataclass(frozen=True)
class _Segment:
    """One ``/``-separated piece of a template: literal text and parameters."""

    parts: tuple[str | RouteParameter, ...]
    pattern: re.Pattern[str] | None = None  # only for multi-part segments like {name}.{ext}

    @property
    def literal(self) -> str | None:
        only = self.parts[0] if len(self.parts) == 1 else None
        return only if isinstance(only, str) else None

    @property
    def parameter(self) -> RouteParameter | None:
        only = self.parts[0] if len(self.parts) == 1 else None
        return only if isinstance(only, RouteParameter) else None

    @property
    def precedence_digit(self) -> int:
        # ASP.NET Core RoutePrecedence.ComputeInboundPrecedenceDigit: 1 literal, 2 multi-part
        # or constrained parameter, 3 parameter, 4 constrained catch-all, 5 catch-all.
        if len(self.parts) > 1:
            return 2
        param = self.parameter
        if param is None:
            return 1
        digit = 5 if param.catch_all else 3
        return digit - 1 if param.constraints else digit


class RouteTemplate:
    """A parsed route template such as ``api/items/{id:int}/{*rest}``.

    Parameters
    ----------
    text : str
        The template; leading and trailing slashes are ignored.
    """

    def __init__(self, text: str) -> None:
        self.text = text.strip("/")
        self.segments = tuple(_parse_segment(s, text) for s in _split_template(self.text))
        self.parameters = [
            p for seg in self.segments for p in seg.parts if isinstance(p, RouteParameter)
        ]
        self._validate()

    def __repr__(self) -> str:
        return f"RouteTemplate({self.text!r})"

    @property
    def precedence(self) -> tuple[int, ...]:
        """Sort key: smaller is more specific."""
        return tuple(seg.precedence_digit for seg in self.segments)

    def _validate(self) -> None:
        names = [p.name.lower() for p in self.parameters]
        if len(names) != len(set(names)):
            raise RouteTemplateError(f"Route '{self.text}' uses a parameter name twice.")
        for i, seg in enumerate(self.segments):
            param = seg.parameter
            if param is not None and param.catch_all and i != len(self.segments) - 1:
                raise RouteTemplateError(
                    f"Route '{self.text}': a catch-all parameter must be the last segment."
                )

    def match(self, path_segments: list[str]) -> dict[str, str] | None:
        """Route values for the decoded path segments, or None if the template does not match.

        Optional parameters that are absent and have no default are left out, as the Python
        worker leaves them out of ``req.route_params``.
        """
        values: dict[str, str] = {}
        for i, seg in enumerate(self.segments):
            param = seg.parameter
            if param is not None and param.catch_all:
                rest = "/".join(path_segments[i:])
                if rest:
                    if not param.accepts(rest):
                        return None
                    values[param.name] = rest
                elif param.default is not None:
                    values[param.name] = param.default
                return values
            if i >= len(path_segments):
                return values if self._fill_missing(self.segments[i:], values) else None
            text = path_segments[i]
            if seg.literal is not None:
                if text.lower() != seg.literal.lower():
                    return None
            elif param is not None:
                if not text or not param.accepts(text):
                    return None
                values[param.name] = text
            elif not _match_complex(seg, text, values):
                return None
        return values if len(path_segments) <= len(self.segments) else None

    @staticmethod
    def _fill_missing(segments: tuple[_Segment, ...], values: dict[str, str]) -> bool:
        # The path ended early: every remaining segment must be an optional parameter, one with
        # a default, or a catch-all (which matches the empty rest).
        for seg in segments:
            param = seg.parameter
            if param is None or not (
                param.optional or param.catch_all or param.default is not None
            ):
                return False
            if param.default is not None:
                values[param.name] = param.default
        return True


def _match_complex(seg: _Segment, text: str, values: dict[str, str]) -> bool:
    assert seg.pattern is not None
    found = seg.pattern.fullmatch(text)
    if found is None:
        return False
    for part in seg.parts:
        if isinstance(part, RouteParameter):
            value = found.group(_group_name(part))
            if value is None:
                if part.default is not None:
                    values[part.name] = part.default
                continue
            if not part.accepts(value):
                return False
            values[part.name] = value
    return True


def _group_name(param: RouteParameter) -> str:
    return "p_" + re.sub(r"\W", "_", param.name)


def _split_template(text: str) -> list[str]:
    """Split on ``/`` outside braces (a regex constraint may contain a slash)."""
    if not text:
        return []
    segments, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(depth - 1, 0)
        elif ch == "/" and depth == 0:
            segments.append(text[start:i])
            start = i + 1
    segments.append(text[start:])
    return segments


def _parse_segment(text: str, template: str) -> _Segment:
    if not text:
        raise RouteTemplateError(f"Route '{template}' has an empty segment ('//').")
    parts: list[str | RouteParameter] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if text.startswith("{{", i) or text.startswith("}}", i):
            literal.append(ch)
            i += 2
        elif ch == "{":
            end = _closing_brace(text, i, template)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_parse_parameter(text[i + 1 : end], template))
            i = end + 1
        elif ch == "}":
            raise RouteTemplateError(f"Route '{template}' has an unmatched '}}'.")
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    if len(parts) == 1:
        return _Segment(tuple(parts))
    if any(isinstance(p, RouteParameter) and p.catch_all for p in parts):
        raise RouteTemplateError(f"Route '{template}': a catch-all must be a whole segment.")
    return _Segment(tuple(parts), _complex_pattern(parts))


def _closing_brace(text: str, start: int, template: str) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise RouteTemplateError(f"Route '{template}' has an unmatched '{{'.")


def _complex_pattern(parts: list[str | RouteParameter]) -> re.Pattern[str]:
    # A lenient reading of ASP.NET's multi-part segments ({name}.{ext}, file-{id}): parameters
    # match lazily between the literals; a trailing optional parameter takes its separator with
    # it, so "{name}.{ext?}" matches both "report.pdf" and "report".
    pattern = []
    for index, part in enumerate(parts):
        if isinstance(part, str):
            nxt = parts[index + 1] if index + 1 < len(parts) else None
            if isinstance(nxt, RouteParameter) and nxt.optional and index + 2 == len(parts):
                pattern.append(f"(?:{re.escape(part)}(?P<{_group_name(nxt)}>.+?))?")
                break
            pattern.append(re.escape(part))
        else:
            pattern.append(f"(?P<{_group_name(part)}>.+?)")
    return re.compile("".join(pattern), re.IGNORECASE | re.DOTALL)


_NAME = re.compile(r"[^:=?]*")


def _parse_parameter(body: str, template: str) -> RouteParameter:
    body = body.replace("{{", "{").replace("}}", "}")  # escaped braces, as in regex(\\d{{3}})
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    name = _NAME.match(body).group(0)  # type: ignore[union-attr]  # [^...]* always matches
    if not name:
        raise RouteTemplateError(f"Route '{template}' has a parameter without a name.")
    rest = body[len(name) :]
    constraints: list[tuple[str, str | None]] = []
    while rest.startswith(":"):
        kind, arg, rest = _parse_constraint(rest[1:], template)
        constraints.append((kind, arg))
    optional = False
    default: str | None = None
    if rest.startswith("="):
        default = rest[1:]
    elif rest == "?":
        optional = True
    elif rest:
        raise RouteTemplateError(f"Route '{template}': cannot read parameter '{{{body}}}'.")
    return RouteParameter(name, optional, default, catch_all, tuple(constraints))


def _parse_constraint(text: str, template: str) -> tuple[str, str | None, str]:
    kind = re.match(r"\w*", text).group(0)  # type: ignore[union-attr]  # \w* always matches
    rest = text[len(kind) :]
    if not rest.startswith("("):
        return kind.lower(), None, rest
    depth = 0
    for i, ch in enumerate(rest):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                # ASP.NET ends a constraint argument at the last ')' before the next ':', '=',
                # '?' or the end, so a regex like (a)(b) stays whole.
                after = rest[i + 1 :]
                if after and after[0] not in ":=?":
                    continue
                return kind.lower(), rest[1:i], after
    raise RouteTemplateError(f"Route '{template}': unclosed '(' in constraint '{kind}'.")


_INT = re.compile(r"\s*[+-]?\d+\s*")


def _as_int(value: str) -> int | None:
    return int(value) if _INT.fullmatch(value) else None


_FLOAT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*|\s*(NaN|[+-]?Infinity)\s*")


def _as_float(value: str) -> float | None:
    # double.TryParse with the invariant culture; Python's float() would also take "1_0".
    return float(value) if _FLOAT.fullmatch(value) else None


def _args(arg: str | None) -> list[int]:
    try:
        return [int(a) for a in (arg or "").split(",")]
    except ValueError:
        return []


def _constraint_ok(kind: str, arg: str | None, value: str) -> bool:
    """ASP.NET's inline route constraints, read leniently: unknown ones accept everything."""
    if kind in ("int", "long"):
        number = _as_int(value)
        bits = 31 if kind == "int" else 63
        return number is not None and -(2**bits) <= number < 2**bits
    if kind in ("double", "float", "decimal"):
        return _as_float(value) is not None
    if kind == "bool":
        return value.strip().lower() in ("true", "false")
    if kind == "guid":
        try:
            uuid.UUID(value.strip())
        except ValueError:
            return False
        return True
    if kind == "alpha":
        return re.fullmatch(r"[A-Za-z]+", value) is not None
    if kind == "datetime":
        try:
            datetime.fromisoformat(value.strip())
        except ValueError:
            return False
        return True
    if kind == "required":
        return value != ""
    if kind == "regex":
        # RegexRouteConstraint: IsMatch with IgnoreCase, so unanchored unless the pattern says so.
        return re.search(arg or "", value, re.IGNORECASE) is not None
    limits = _args(arg)
    if kind in ("min", "max", "range"):
        number = _as_int(value)
        if number is None or not limits:
            return number is not None
        if kind == "min":
            return number >= limits[0]
        if kind == "max":
            return number <= limits[0]
        return len(limits) == 2 and limits[0] <= number <= limits[1]
    if kind in ("length", "minlength", "maxlength") and limits:
        if kind == "minlength":
            return len(value) >= limits[0]
        if kind == "maxlength":
            return len(value) <= limits[0]
        low, high = (limits[0], limits[0]) if len(limits) == 1 else (limits[0], limits[1])
        return low <= len(value) <= high
    return True


def remove_dot_segments(raw_path: str) -> str:
    """The raw path with ``.`` and ``..`` segments resolved, as Kestrel routes it.

    Kestrel percent-decodes the path (all but ``%2F``) and then removes dot segments
    (RFC 3986 §5.2.4), so ``/api/instances/%2E%2E`` is ``/api/`` before any route is matched.
    """
    kept: list[str] = []
    segments = raw_path.split("/")[1:]
    for segment in segments:
        decoded = unquote(segment)
        if decoded == "..":
            if kept:
                kept.pop()
        elif decoded != ".":
            kept.append(segment)
    # A path ending in a dot segment names a directory: it keeps its trailing slash.
    ends_in_dots = bool(segments) and unquote(segments[-1]) in (".", "..")
    return "/" + "/".join(kept) + ("/" if ends_in_dots and kept else "")


def split_path(raw_path: str) -> list[str]:
    """Decoded segments of a raw (percent-encoded) URL path, without empty trailing ones.

    Decoding per segment keeps an encoded slash (``%2F``) inside its segment.
    """
    stripped = raw_path.strip("/")
    return [unquote(s) for s in stripped.split("/")] if stripped else []


@dataclass(frozen=True)
class RouteEntry(Generic[T]):
    """A template, the methods it answers and what it routes to."""

    template: RouteTemplate
    methods: frozenset[str]
    target: T


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    """The winner for a request: its target and the route values."""

    target: T
    route_params: dict[str, str] = field(default_factory=dict)


class RouteTable(Generic[T]):
    """Templates ordered by ASP.NET precedence; ties keep registration order."""

    def __init__(self) -> None:
        self._entries: list[RouteEntry[T]] = []

    def add(self, template: str, methods: Iterable[str], target: T) -> RouteEntry[T]:
        """Register ``target`` for ``template``; no methods means every method."""
        entry = RouteEntry(RouteTemplate(template), frozenset(m.upper() for m in methods), target)
        self._entries.append(entry)
        self._entries.sort(key=lambda e: e.template.precedence)
        return entry

    @property
    def entries(self) -> list[RouteEntry[T]]:
        """Entries in matching order."""
        return list(self._entries)

    def resolve(self, method: str, raw_path: str) -> RouteMatch[T] | None:
        """The most specific entry matching the method and path, or None (the host's 404)."""
        segments = split_path(raw_path)
        method = method.upper()
        for entry in self._entries:
            if entry.methods and method not in entry.methods:
                continue
            values = entry.template.match(segments)
            if values is not None:
                return RouteMatch(entry.target, values)
        return None


def function_route(info: FunctionInfo, route_prefix: str) -> str:
    """The full template of an HTTP function: ``{prefix}/{route or function name}``."""
    route = (info.route if info.route is not None else info.name).strip("/")
    prefix = route_prefix.strip("/")
    return f"{prefix}/{route}".strip("/") if prefix else route


def function_route_table(
    functions: Iterable[FunctionInfo], route_prefix: str = "api"
) -> RouteTable[FunctionInfo]:
    """The route table of an app's HTTP-triggered functions."""
    table: RouteTable[FunctionInfo] = RouteTable()
    for info in functions:
        table.add(function_route(info, route_prefix), info.methods, info)
    return table
