"""Calling the app as an attacker would: with or without keys, as anyone or nobody."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any

from tests.e2e.conftest import PROJECT, HostProcess


def principal(name: str) -> dict[str, str]:
    """The headers App Service Authentication sets for a signed-in ``name``."""
    claims = {
        "auth_typ": "aad",
        "claims": [{"typ": "preferred_username", "val": name}, {"typ": "emails", "val": name}],
        "name_typ": "preferred_username",
        "role_typ": "roles",
    }
    return {
        "X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(claims).encode()).decode(),
        "X-MS-CLIENT-PRINCIPAL-NAME": name,
        "X-MS-CLIENT-PRINCIPAL-ID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
    }


@dataclass
class Answer:
    status: int
    body: Any
    raw: bytes
    headers: Message

    @property
    def code(self) -> str | None:
        """The error code of the app's one error shape, if this is one."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code"))
        return None


@dataclass
class SecureHost:
    """The running host, its keys, and a way to call it as anyone."""

    process: HostProcess
    keys: dict[str, Any]

    @property
    def base_url(self) -> str:
        return self.process.base_url

    @property
    def function_key(self) -> str:
        return str(self.keys["functionKeys"]["default"])

    @property
    def system_key(self) -> str:
        return str(self.keys["systemKeys"]["durabletask_extension"])

    def call(
        self,
        method: str,
        path_or_url: str,
        body: Any = None,
        *,
        key: str | None = "function",
        as_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Send a request: ``key`` "function" (default), "system", None or a literal key;
        ``as_`` a signed-in person's name."""
        url = path_or_url if "://" in path_or_url else f"{self.base_url}{path_or_url}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        chosen = {"function": self.function_key, "system": self.system_key}.get(key or "", key)
        if chosen:
            request.add_header("x-functions-key", chosen)
        for name, value in {**(principal(as_) if as_ else {}), **(headers or {})}.items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                raw = response.read()
                status, answer_headers = response.status, response.headers
        except urllib.error.HTTPError as error:
            raw, status, answer_headers = error.read(), error.code, error.headers
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return Answer(status, parsed, raw, answer_headers)


def read_keys(env: dict[str, str]) -> dict[str, Any]:
    """``python -m devhost keys`` for the project, as a developer runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "devhost", "keys", "--app", str(PROJECT)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    keys: dict[str, Any] = json.loads(done.stdout)
    return keys


def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "it") -> Any:
    """Wait (bounded by time) until ``check()`` returns something truthy, and return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
