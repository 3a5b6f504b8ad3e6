"""Who may use the monitor: this machine only, and actions only from the monitor's own page.

Why localhost only (and not the master key): the monitor is a developer's page on the machine
that runs the host. A browser cannot attach a key header to a page navigation, so a key would
travel in the URL, into history and logs; the management API with keys stays the way to act
from elsewhere. So every monitor request must come from a loopback address and name a
loopback host in ``Host`` (a page on another site that points a DNS name at 127.0.0.1 is
refused: DNS rebinding), whatever ``--host`` the local host listens on and with or without
key enforcement.

Actions (POST) also need, against cross-site request forgery: an ``Origin`` equal to the
monitor's own, JSON content, and the per-process token the page was served with in the
``X-Monitor-Token`` header (a custom header makes any cross-origin attempt a CORS preflight,
which the monitor never answers with permission).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from aiohttp import web

TOKEN_HEADER = "X-Monitor-Token"
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def new_token() -> str:
    """A fresh random token for one monitor (process)."""
    return secrets.token_urlsafe(32)


def _is_loopback_address(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def host_name(request: web.Request) -> str:
    """The host name of the ``Host`` header, without the port, lower-cased."""
    host = (request.headers.get("Host") or "").strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def refuse_reason(request: web.Request) -> str | None:
    """Why a request may not see the monitor at all (None: it may)."""
    if not _is_loopback_address(request.remote):
        return "The monitor answers on this machine only."
    if host_name(request) not in _LOOPBACK_NAMES:
        return "The monitor answers only to localhost, 127.0.0.1 or [::1]."
    return None


def forgery_reason(request: web.Request, token: str) -> str | None:
    """Why an action request does not come from the monitor's page (None: it does)."""
    origin = request.headers.get("Origin")
    expected = f"{request.scheme}://{request.headers.get('Host', '')}".lower()
    if origin is None or origin.lower() != expected:
        return "Actions are accepted only from the monitor's own page (Origin)."
    if request.content_type != "application/json":
        return "Actions take a JSON body."
    sent = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(sent.encode(), token.encode()):
        return "Actions need the monitor page's token; reload the page."
    return None
