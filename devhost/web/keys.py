"""Access keys as the Functions host checks them (``--enforce-keys``).

The rules follow azure-functions-host (``AuthenticationLevelHandler``, ``SecretManager``,
``AuthUtility``, ``FunctionInvocationMiddleware`` and the ``SystemKeyAuthLevel`` policy):

* a key is read from the ``x-functions-key`` header, else from the ``code`` query parameter
  (the header wins; names compare case-insensitively);
* the master key grants ``admin``, which opens everything; a system key grants ``system``
  under its own name; a host function key (``functionKeys``) or a key of the function itself
  grants ``function``;
* an HTTP function at ``function`` level needs ``function`` or ``admin``; at ``admin`` level only
  the master key; at ``anonymous`` level nothing. A system key does not open user functions;
* the extension webhook ``/runtime/webhooks/durabletask/...`` needs the system key named
  ``durabletask_extension`` or the master key;
* a refused function call is ``UnauthorizedResult``: 401 with no body. A refused webhook call
  goes through ASP.NET's challenge, which adds ``WWW-Authenticate: Bearer`` (the JWT scheme
  is one of the policy's schemes), again without a body;
* keys are compared in constant time (``Key.SecretValueEquals``).

Key values have the real host's shape: 40 random bytes as URL-safe base64 with the ``==``
padding kept (``SecretGenerator``), so they may appear unencoded in a query string.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from aiohttp import web

FUNCTIONS_KEY_HEADER = "x-functions-key"
FUNCTIONS_KEY_QUERY = "code"
MASTER_KEY_NAME = "master"
DEFAULT_KEY_NAME = "default"
DURABLE_SYSTEM_KEY = "durabletask_extension"  # DefaultScriptWebHookProvider.GetKeyName


class AuthLevel(IntEnum):
    """What a presented key grants (``AuthorizationLevel`` of the WebJobs HTTP extension)."""

    ANONYMOUS = 0
    FUNCTION = 1
    SYSTEM = 2
    ADMIN = 3


def new_key_value() -> str:
    """A fresh key value: 40 random bytes, URL-safe base64 with padding (56 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(40)).decode("ascii")


def same_secret(presented: str, stored: str) -> bool:
    """Constant-time comparison of two key values."""
    return hmac.compare_digest(presented.encode("utf-8"), stored.encode("utf-8"))


@dataclass
class HostKeys:
    """The host's keys (``HostSecretsInfo``): the master key, host function keys, system keys."""

    master_key: str
    function_keys: dict[str, str] = field(default_factory=dict)
    system_keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def generate(cls) -> HostKeys:
        """New keys, as the host creates them on first start (plus the durable system key)."""
        return cls(
            master_key=new_key_value(),
            function_keys={DEFAULT_KEY_NAME: new_key_value()},
            system_keys={DURABLE_SYSTEM_KEY: new_key_value()},
        )

    @property
    def durable_system_key(self) -> str:
        """The key the durable webhook URLs carry in ``code=``."""
        return self.system_keys[DURABLE_SYSTEM_KEY]

    def to_info(self) -> dict[str, Any]:
        """``{"masterKey", "functionKeys": {...}, "systemKeys": {...}}`` (``HostSecretsInfo``)."""
        return {
            "masterKey": self.master_key,
            "functionKeys": dict(self.function_keys),
            "systemKeys": dict(self.system_keys),
        }

    def to_secrets_json(self, host_name: str = "") -> str:
        """The host secrets file as the real host writes it (``ScriptSecretSerializerV1``)."""
        body = {
            "masterKey": _key_entry(MASTER_KEY_NAME, self.master_key),
            "functionKeys": [_key_entry(n, v) for n, v in self.function_keys.items()],
            "systemKeys": [_key_entry(n, v) for n, v in self.system_keys.items()],
            "hostName": host_name or None,
            "instanceId": secrets.token_hex(16),
            "source": "runtime",
            "decryptionKeyId": "",
        }
        return json.dumps(body, indent=2)

    @classmethod
    def from_secrets_json(cls, text: str) -> HostKeys:
        """Read a host secrets file; raises ``ValueError`` when it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("masterKey"), dict):
            raise ValueError("not a host secrets file (no masterKey object)")
        entries = [data["masterKey"], *data.get("functionKeys", []), *data.get("systemKeys", [])]
        for entry in entries:
            if isinstance(entry, dict) and entry.get("encrypted"):
                # The real host encrypts with the App Service data-protection key; a local host
                # has no such key, so such a file cannot be read here.
                raise ValueError("the host secrets are encrypted")
        return cls(
            master_key=str(data["masterKey"]["value"]),
            function_keys=_named_values(data.get("functionKeys")),
            system_keys=_named_values(data.get("systemKeys")),
        )


def function_keys_from_json(text: str) -> dict[str, str]:
    """The keys of one function's secrets file (``{"keys": [{"name", "value"}]}``)."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a function secrets file")
    return _named_values(data.get("keys"))


def function_secrets_json(keys: Mapping[str, str]) -> str:
    """A function's secrets file as the real host writes it."""
    body = {
        "keys": [_key_entry(name, value) for name, value in keys.items()],
        "hostName": None,
        "instanceId": secrets.token_hex(16),
        "source": "runtime",
        "decryptionKeyId": "",
    }
    return json.dumps(body, indent=2)


def _key_entry(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value, "encrypted": False}


def _named_values(entries: Any) -> dict[str, str]:
    if not isinstance(entries, list):
        return {}
    return {str(e["name"]): str(e["value"]) for e in entries if isinstance(e, dict)}


def presented_key(request: web.Request) -> str | None:
    """The key a request carries: ``x-functions-key`` first, else ``?code=`` (any case)."""
    header = request.headers.get(FUNCTIONS_KEY_HEADER)
    if header is not None:
        return header or None
    for name, value in request.query.items():
        if name.lower() == FUNCTIONS_KEY_QUERY:
            return value or None
    return None


def key_level(
    value: str | None, keys: HostKeys, function_keys: Mapping[str, str] | None = None
) -> tuple[str | None, AuthLevel]:
    """The name and level a key value grants (``SecretManager.GetAuthorizationLevelAsync``)."""
    if not value:
        return None, AuthLevel.ANONYMOUS
    if same_secret(value, keys.master_key):
        return MASTER_KEY_NAME, AuthLevel.ADMIN
    for name, stored in keys.system_keys.items():
        if same_secret(value, stored):
            return name, AuthLevel.SYSTEM
    for name, stored in keys.function_keys.items():
        if same_secret(value, stored):
            return name, AuthLevel.FUNCTION
    for name, stored in (function_keys or {}).items():
        if same_secret(value, stored):
            return name, AuthLevel.FUNCTION
    return None, AuthLevel.ANONYMOUS


def function_allows(required: str, granted: AuthLevel) -> bool:
    """Whether a key of level ``granted`` may call a function declared at ``required``.

    ``AuthUtility.PrincipalHasAuthLevelClaim``: anonymous needs nothing, admin opens all, and
    otherwise the levels must be equal (so a system key does not open a function route).
    """
    wanted = required.lower()
    if wanted == "anonymous":
        return True
    if granted is AuthLevel.ADMIN:
        return True
    return wanted == "function" and granted is AuthLevel.FUNCTION


def webhook_allows(name: str | None, granted: AuthLevel) -> bool:
    """The ``SystemKeyAuthLevel`` policy for ``/runtime/webhooks/durabletask``."""
    if granted is AuthLevel.ADMIN:
        return True
    return granted is AuthLevel.SYSTEM and (name or "").lower() == DURABLE_SYSTEM_KEY


def function_unauthorized() -> web.Response:
    """``UnauthorizedResult``: 401, no body, no challenge header."""
    return web.Response(status=401)


def webhook_unauthorized() -> web.Response:
    """A failed ``[Authorize]`` on the webhook: 401 with the JWT scheme's challenge, no body."""
    return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
