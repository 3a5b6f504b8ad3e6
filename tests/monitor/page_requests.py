"""What the monitor's pages asked for, as both browsers' tests check it."""

from __future__ import annotations

from urllib.parse import urlsplit

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def outside_requests(urls: list[str]) -> list[str]:
    """The URLs that would leave this machine: anything but localhost, data: and blob:."""
    outside = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            continue
        if parts.scheme not in ("http", "https", "ws", "wss") or parts.hostname not in LOCAL_HOSTS:
            outside.append(url)
    return outside
