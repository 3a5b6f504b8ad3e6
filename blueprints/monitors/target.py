"""Which URLs a monitor may check, and checking one without reaching inside the network (SSRF).

A monitor fetches a URL a caller named, from inside the app's network: without a rule it could
read the local host's management API, the storage emulator, another app on a private address
or the cloud's metadata endpoint. So a target must be ``http(s)``, and every address its host
name resolves to must be a public unicast address (not loopback, private, link-local, shared,
reserved, multicast or unspecified, nor Azure's platform address ``168.63.129.16``). The
``MONITOR_ALLOWED_HOSTS`` setting (comma-separated host names, compared case-insensitively)
opens named hosts anyway, e.g. an internal service on purpose, or ``127.0.0.1`` for tests.

The check connects only to the addresses that were checked (the resolver is pinned), so a name
that resolves to a public address when checked and a private one when fetched (DNS rebinding)
cannot slip through; redirects are not followed, and the response body is never read, so no
part of what the target answers is shown anywhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "ALLOWED_HOSTS_SETTING",
    "CheckOutcome",
    "TargetRefused",
    "check_target",
    "resolve_target",
]

ALLOWED_HOSTS_SETTING = "MONITOR_ALLOWED_HOSTS"
CHECK_TIMEOUT_SECONDS = 10.0
# Reached from inside Azure, never a service a monitor should check (wire server / IMDS proxy).
_PLATFORM_ADDRESSES = frozenset({ipaddress.ip_address("168.63.129.16")})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """The URL may not be checked; the message says why, for the caller."""


@dataclass(frozen=True)
class CheckOutcome:
    """What a check found: a status code, or why there was none (never the body)."""

    status_code: int | None
    error: str | None = None


def _allowed_hosts() -> frozenset[str]:
    raw = os.environ.get(ALLOWED_HOSTS_SETTING, "")
    return frozenset(host.strip().lower() for host in raw.split(",") if host.strip())


def _public(address: IPAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not address.is_multicast and address not in _PLATFORM_ADDRESSES


def _parse(url: str) -> tuple[SplitResult, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise TargetRefused("the URL cannot be read") from error
    if parts.scheme.lower() not in ("http", "https"):
        raise TargetRefused("only http and https URLs can be monitored")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise TargetRefused("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("the URL may not carry credentials")
    return parts, host, port or (443 if parts.scheme.lower() == "https" else 80)


async def resolve_target(url: str) -> list[ResolveResult]:
    """Resolve a monitor URL's host and check every address it has.

    Returns
    -------
    list[aiohttp.abc.ResolveResult]
        The addresses to connect to (all of them checked).

    Raises
    ------
    TargetRefused
        When the URL is not http(s), names no host, does not resolve, or resolves to an
        address that is not public (unless the host is allow-listed).
    """
    _, host, port = _parse(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as error:
        raise TargetRefused(f"the host '{host}' cannot be resolved") from error
    allowed = host in _allowed_hosts()
    results: list[ResolveResult] = []
    for family, _, proto, _, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if not allowed and not _public(address):
            raise TargetRefused(
                f"the host '{host}' resolves to an address that is not public "
                f"(add it to {ALLOWED_HOSTS_SETTING} to monitor it on purpose)"
            )
        results.append(
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=family,
                proto=proto,
                flags=socket.AI_NUMERICHOST,
            )
        )
    if not results:
        raise TargetRefused(f"the host '{host}' has no address")
    return results


class _PinnedResolver(AbstractResolver):
    """Answers with the addresses that were checked, whatever DNS says by now."""

    def __init__(self, addresses: list[ResolveResult]) -> None:
        self._addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return list(self._addresses)

    async def close(self) -> None:
        return None


async def check_target(url: str, timeout: float = CHECK_TIMEOUT_SECONDS) -> CheckOutcome:
    """GET ``url`` once, connecting only to checked addresses; the body is never read.

    Returns
    -------
    CheckOutcome
        The status code (a redirect counts as itself, it is not followed), or a short reason
        (``address not allowed``, ``timed out``, ``connection failed``).
    """
    try:
        addresses = await resolve_target(url)
    except TargetRefused as refused:
        return CheckOutcome(None, f"not checked: {refused}")
    connector = aiohttp.TCPConnector(resolver=_PinnedResolver(addresses), use_dns_cache=False)
    settings: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=timeout)}
    try:
        async with (
            aiohttp.ClientSession(connector=connector, **settings) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            return CheckOutcome(response.status)
    except TimeoutError:
        return CheckOutcome(None, "timed out")
    except aiohttp.ClientError:
        return CheckOutcome(None, "connection failed")
