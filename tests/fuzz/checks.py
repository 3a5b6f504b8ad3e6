"""What every answer of the fuzz tests must hold to, and the tally of what they saw.

An answer breaks the rules when it is a 5xx (outside the real host's documented 500s), when an
``/api`` 4xx with a body is not the one error shape, or when a body shows internals: a
traceback, a file path, an exception repr, an object address (every ``/api`` body and every
error body of the built-in API).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]

# What a body must never show. The project's own path is checked too: it is this machine's.
LEAKS = re.compile(
    "|".join(
        [
            r"Traceback \(most recent call last\)",
            r"File \"[^\"]+\", line \d+",
            r"\.py\"",
            r"\.py, line",
            r"site-packages",
            r"<[\w.]+ object at 0x[0-9a-f]+>",
            r"<class '[\w.]+'>",
            r"\b(?:ValueError|TypeError|KeyError|AttributeError|RuntimeError|RecursionError|"
            r"UnicodeDecodeError|UnicodeEncodeError|AssertionError|OverflowError|IndexError|"
            r"JSONDecodeError|ValidationError|HttpResponseError|ClientError)\b",
            re.escape(str(PROJECT)),
        ]
    )
)
# Bodiless 4xx the host itself answers (before any function runs): no route (404), a key
# missing (401), its size limits (413, 414, 431) and a header it cannot decode (400).
HOST_BARE_4XX = frozenset({400, 401, 404, 413, 414, 431})
# aiohttp's own parser answers malformed HTTP (a control character in a header, a request
# target that is not ASCII) with a plain-text 400 before the host sees the request; Kestrel's
# 400 there has no body. Both are the host's, not the app's.
HOST_PARSER_400 = "text/plain"


def error_shape_problem(body: Any) -> str | None:
    """Why ``body`` is not ``{"error": {"code", "message", "details": [{"field"...}]}}``."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return "not {'error': ...}"
    error = body["error"]
    if not isinstance(error, dict) or not {"code", "message", "details"} <= set(error):
        return "error lacks code, message or details"
    if set(error) - {"code", "message", "details", "correlationId"}:
        return f"error has unknown keys {sorted(set(error))}"
    if not (isinstance(error["code"], str) and isinstance(error["message"], str)):
        return "code or message is not text"
    details = error["details"]
    if not isinstance(details, list) or not all(
        isinstance(d, dict) and isinstance(d.get("field"), str) for d in details
    ):
        return "a detail does not name its field"
    return None


@dataclass
class Tally:
    """Counts of what the fuzz tests sent and got back; thread-safe, shared by the session."""

    requests: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    documented_500s: list[str] = field(default_factory=list)
    unshaped: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(
        self,
        method: str,
        route: str,
        what: str,
        status: int,
        body: bytes,
        *,
        documented_500: bool = False,
        media_type: str = "",
    ) -> list[str]:
        """Count one answer; return the rules it breaks (also kept for the summary)."""
        problems = answer_problems(
            route, status, body, documented_500=documented_500, media_type=media_type
        )
        with self._lock:
            self.requests += 1
            self.by_route[f"{method} {route}"] += 1
            self.by_status[status] += 1
            for kind, message in problems:
                {
                    "5xx": self.server_errors,
                    "unshaped": self.unshaped,
                    "leak": self.leaks,
                }[kind].append(f"{what} -> {status}: {message}")
            if status == 500 and documented_500 and not problems:
                self.documented_500s.append(what)
        return [f"{kind}: {message}" for kind, message in problems]

    def summary(self) -> dict[str, Any]:
        """The counts the docs quote."""
        return {
            "requests": self.requests,
            "routes": len(self.by_route),
            "server_errors": len(self.server_errors),
            "documented_real_host_500s": len(self.documented_500s),
            "unshaped_4xx": len(self.unshaped),
            "leaks": len(self.leaks),
            "statuses": dict(sorted(self.by_status.items())),
        }


def answer_problems(
    route: str, status: int, body: bytes, *, documented_500: bool = False, media_type: str = ""
) -> list[tuple[str, str]]:
    """The rules an answer breaks: ``("5xx" | "unshaped" | "leak", why)`` pairs."""
    problems: list[tuple[str, str]] = []
    text = body.decode("utf-8", errors="replace")
    if status >= 500 and not (status == 500 and documented_500):
        problems.append(("5xx", text[:300]))
    # The built-in API's status answers show a failed instance's output as the real host does
    # (the host's failure text, stack included; on Azure the system key guards that API): only
    # its error answers are held to the rule.
    leak = LEAKS.search(text) if route.startswith("/api") or status >= 400 else None
    if leak is not None:
        problems.append(("leak", text[max(0, leak.start() - 80) : leak.end() + 80]))
    from_host = (not body and status in HOST_BARE_4XX) or (
        status == 400 and media_type == HOST_PARSER_400
    )
    if route.startswith("/api") and 400 <= status < 500 and not from_host:
        try:
            problem = error_shape_problem(json.loads(body))
        except ValueError:
            problem = "not JSON"
        if problem is not None:
            problems.append(("unshaped", f"{problem}: {text[:200]}"))
    return problems


# The real host's own 500s on its built-in API (docs/local-host.md lists them): starting or
# restarting in place an instance that is running (OrchestrationAlreadyExistsException),
# suspending, resuming or rewinding one in the wrong state (InvalidOperationException), and
# the status of a failed instance asked with returnInternalServerErrorOnFailure=true.
_REAL_HOST_500_TYPES = frozenset(
    {
        "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
        "System.InvalidOperationException",
    }
)


def real_host_500(route: str, status: int, body: bytes) -> bool:
    """Whether a 500 of the built-in API is one the real host answers too."""
    if status != 500 or not route.startswith("/runtime/webhooks/durabletask"):
        return False
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    if not isinstance(answer, dict):
        return False
    return (
        answer.get("ExceptionType") in _REAL_HOST_500_TYPES
        or answer.get("runtimeStatus") == "Failed"
    )
