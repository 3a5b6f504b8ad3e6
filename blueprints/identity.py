"""Who the caller is: the App Service Authentication principal, never the request body.

App Service Authentication ("Easy Auth") signs people in before a request reaches the app and
passes who they are in headers it sets itself; it drops such headers when a client sends them
(learn.microsoft.com, "Work with user identities in Azure App Service authentication"):

* ``X-MS-CLIENT-PRINCIPAL``: base64 JSON ``{"auth_typ", "claims": [{"typ", "val"}], "name_typ",
  "role_typ"}``;
* ``X-MS-CLIENT-PRINCIPAL-NAME`` (e.g. the e-mail address or UPN), ``X-MS-CLIENT-PRINCIPAL-ID``,
  ``X-MS-CLIENT-PRINCIPAL-IDP``.

The ``WORKFLOW_AUTH`` setting says where identities come from:

``easyauth``
    From the principal only. A route that acts for a person answers 401 without one, and 403
    when the body names somebody else (``approverEmail``, ``approver``, ``actor``...).
``none``
    Local development only: the body names the person. Principal headers, when a request
    carries them, still win (a body naming somebody else is still 403).

Unset, it is ``easyauth`` on App Service (``WEBSITE_INSTANCE_ID`` is set there) and ``none``
elsewhere; ``none`` on App Service is refused (logged, and ``easyauth`` applies), as is an
unknown value. Routes call :func:`resolve_actor`, :func:`require_self` or
:func:`require_principal`; the business rules (who may decide what) stay in the workflows.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel

from blueprints.http_errors import ApiError, validate_model

__all__ = [
    "AUTH_SETTING",
    "AuthMode",
    "Principal",
    "auth_mode",
    "bind_identities",
    "read_principal",
    "require_one_of",
    "require_principal",
    "require_self",
    "resolve_actor",
]

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

AUTH_SETTING = "WORKFLOW_AUTH"
PRINCIPAL_HEADER = "x-ms-client-principal"
PRINCIPAL_NAME_HEADER = "x-ms-client-principal-name"
PRINCIPAL_ID_HEADER = "x-ms-client-principal-id"
PRINCIPAL_IDP_HEADER = "x-ms-client-principal-idp"
# Claims that carry an address a person is known by, after App Service's claim mapping.
_ADDRESS_CLAIMS = frozenset(
    {
        "email",
        "emails",
        "preferred_username",
        "upn",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    }
)
# Claims that carry an app role (Entra ID app roles arrive as ``roles``), besides ``role_typ``.
_ROLE_CLAIMS = frozenset(
    {"roles", "role", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"}
)
_MAX_PRINCIPAL_HEADER = 16 * 1024


class AuthMode(StrEnum):
    """Where callers' identities come from."""

    EASYAUTH = "easyauth"
    NONE = "none"


def _on_app_service() -> bool:
    return bool(os.environ.get("WEBSITE_INSTANCE_ID"))


def auth_mode() -> AuthMode:
    """The identity mode from ``WORKFLOW_AUTH`` (read on every call, so tests can change it)."""
    raw = os.environ.get(AUTH_SETTING, "").strip().lower()
    if not raw:
        return AuthMode.EASYAUTH if _on_app_service() else AuthMode.NONE
    if raw == AuthMode.NONE and not _on_app_service():
        return AuthMode.NONE
    return AuthMode.EASYAUTH


def announce_mode() -> None:
    """Log the mode once at start-up, loudly when identities come from request bodies."""
    raw = os.environ.get(AUTH_SETTING, "").strip().lower()
    mode = auth_mode()
    if raw and raw not in (AuthMode.EASYAUTH, AuthMode.NONE):
        logger.error("%s=%r is not easyauth or none; using easyauth.", AUTH_SETTING, raw)
    elif raw == AuthMode.NONE and mode is AuthMode.EASYAUTH:
        logger.error("%s=none is for local development only; using easyauth.", AUTH_SETTING)
    if mode is AuthMode.NONE:
        logger.warning(
            "%s=none: callers' identities are taken from request bodies (local development "
            "only; deployments set %s=easyauth).",
            AUTH_SETTING,
            AUTH_SETTING,
        )


@dataclass(frozen=True)
class Principal:
    """The signed-in caller, as App Service Authentication describes them."""

    id: str | None
    name: str | None
    provider: str | None
    claims: tuple[tuple[str, str], ...] = ()
    role_type: str | None = None

    @property
    def roles(self) -> frozenset[str]:
        """The caller's app roles: the claims of the principal's ``role_typ`` and ``roles``."""
        kinds = _ROLE_CLAIMS | ({self.role_type.lower()} if self.role_type else set())
        return frozenset(
            value.strip() for kind, value in self.claims if kind.lower() in kinds and value.strip()
        )

    @property
    def identities(self) -> frozenset[str]:
        """Every address the caller is known by, lower-cased: the name and address claims."""
        found = {self.name} if self.name else set()
        found |= {value for kind, value in self.claims if kind.lower() in _ADDRESS_CLAIMS}
        return frozenset(value.strip().lower() for value in found if value.strip())

    @property
    def display(self) -> str:
        """The caller's name (or ID) for messages and records."""
        return self.name or self.id or "the signed-in caller"

    def is_(self, identity: str) -> bool:
        """Whether ``identity`` (an e-mail address or name) is this caller."""
        return identity.strip().lower() in self.identities


def _invalid(reason: str) -> ApiError:
    return ApiError(
        401,
        "InvalidPrincipal",
        f"The App Service Authentication principal cannot be read: {reason}.",
        [{"field": "X-MS-CLIENT-PRINCIPAL", "code": "invalid_principal", "message": reason}],
    )


def _decode_claims(
    encoded: str,
) -> tuple[str | None, tuple[tuple[str, str], ...], str | None, str | None]:
    if len(encoded) > _MAX_PRINCIPAL_HEADER:
        raise _invalid("the header is too long")
    try:
        data: Any = json.loads(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError, RecursionError) as error:
        raise _invalid("it is not base64-encoded JSON") from error
    if not isinstance(data, dict) or not isinstance(data.get("claims", []), list):
        raise _invalid("it is not an object with a claims list")
    # App Service writes every one of these as a string: anything else is left out, not turned
    # into its Python text (which would then name the caller in messages and records).
    claims = tuple(
        (claim["typ"], claim["val"])
        for claim in data.get("claims", [])
        if isinstance(claim, dict)
        and isinstance(claim.get("typ"), str)
        and isinstance(claim.get("val"), str)
    )
    name_type = _text(data.get("name_typ"))
    name = next((value for kind, value in claims if name_type and kind == name_type), None)
    return name, claims, _text(data.get("auth_typ")), _text(data.get("role_typ"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read_principal(req: func.HttpRequest) -> Principal | None:
    """Return the caller's principal, or None when the request carries none.

    Raises
    ------
    ApiError
        401 ``InvalidPrincipal`` when ``X-MS-CLIENT-PRINCIPAL`` is not what App Service sends.
    """
    encoded = (req.headers.get(PRINCIPAL_HEADER) or "").strip()
    name = (req.headers.get(PRINCIPAL_NAME_HEADER) or "").strip() or None
    principal_id = (req.headers.get(PRINCIPAL_ID_HEADER) or "").strip() or None
    provider = (req.headers.get(PRINCIPAL_IDP_HEADER) or "").strip() or None
    claims: tuple[tuple[str, str], ...] = ()
    role_type = None
    if encoded:
        claimed_name, claims, claimed_provider, role_type = _decode_claims(encoded)
        name = name or claimed_name
        provider = provider or claimed_provider
    if not (encoded or name or principal_id):
        return None
    if not (name or principal_id or claims):
        raise _invalid("it names nobody")
    return Principal(
        id=principal_id, name=name, provider=provider, claims=claims, role_type=role_type
    )


def _unauthenticated() -> ApiError:
    return ApiError(
        401,
        "Unauthenticated",
        "Sign in first: this route acts for a person, and the request carries no App Service "
        "Authentication principal.",
        [{"field": "X-MS-CLIENT-PRINCIPAL", "code": "missing", "message": "no signed-in caller"}],
    )


def require_principal(req: func.HttpRequest) -> Principal | None:
    """Return the caller's principal; with ``easyauth`` one is required (401 otherwise).

    With ``none`` the result is None for a request without principal headers.
    """
    principal = read_principal(req)
    if principal is None and auth_mode() is AuthMode.EASYAUTH:
        raise _unauthenticated()
    return principal


def _mismatch(principal: Principal, claimed: str, field: str) -> ApiError:
    return ApiError(
        403,
        "IdentityMismatch",
        f"{field} names '{claimed}', but the signed-in caller is {principal.display}; "
        "a request may only act for the person who sends it.",
        [{"field": field, "code": "identity_mismatch", "message": "not the signed-in caller"}],
    )


def resolve_actor(req: func.HttpRequest, claimed: str | None, field: str) -> str | None:
    """Return who acts: the body's identity once checked against the principal.

    Parameters
    ----------
    req : azure.functions.HttpRequest
        The request.
    claimed : str | None
        The identity the body (or a header) names, if any.
    field : str
        Where it was named, for the error details (``approverEmail``, ``X-Actor``...).

    Returns
    -------
    str | None
        ``claimed`` when it is the signed-in caller; the principal's name when nothing was
        claimed; with ``none`` and no principal, ``claimed`` as given.

    Raises
    ------
    ApiError
        401 without a principal under ``easyauth``; 403 ``IdentityMismatch`` when the body
        names somebody other than the principal.
    """
    principal = require_principal(req)
    if principal is None:
        return claimed
    if claimed is not None and claimed.strip():
        if not principal.is_(claimed):
            raise _mismatch(principal, claimed, field)
        return claimed
    return principal.name or principal.id


def require_self(req: func.HttpRequest, named: str | None, field: str) -> None:
    """Refuse a request about somebody else's data (an inbox, notifications).

    Under ``easyauth`` the caller must be signed in and ``named`` must be them (a missing
    ``named`` is refused too: nobody lists everyone's). With ``none``, only a principal that
    differs from ``named`` is refused.
    """
    principal = require_principal(req)
    if principal is None:
        return
    if named is None or not named.strip():
        raise ApiError(
            403,
            "Forbidden",
            f"Name yourself in {field}: a signed-in caller may only list their own items.",
            [{"field": field, "code": "forbidden", "message": "required for a signed-in caller"}],
        )
    if not principal.is_(named):
        raise _mismatch(principal, named, field)


def require_one_of(
    req: func.HttpRequest, allowed: Iterable[str | None], what: str, field: str
) -> None:
    """Refuse a caller who is not one of ``allowed`` (e.g. a chain's requester or deciders).

    Only the signed-in caller is checked; with ``none`` and no principal it passes.
    """
    principal = require_principal(req)
    if principal is None:
        return
    if not any(principal.is_(person) for person in allowed if person):
        raise ApiError(
            403,
            "Forbidden",
            f"{principal.display} may not see or change {what}.",
            [{"field": field, "code": "forbidden", "message": "not a participant"}],
        )


def bind_identities(req: func.HttpRequest, payload: ModelT) -> ModelT:
    """Check and fill the identity fields an event model declares (``identity_fields``).

    An event raised through the generic events route that names a person (who approved, who
    wrote the feedback) gets the same treatment as the friendly routes: each declared field is
    resolved with :func:`resolve_actor` and set to the result.
    """
    model = type(payload)
    names: tuple[str, ...] = getattr(model, "identity_fields", ())
    if not names:
        return payload
    wire = payload.model_dump(mode="json", by_alias=True)
    for name in names:
        alias = model.model_fields[name].serialization_alias or name
        wire[alias] = resolve_actor(req, getattr(payload, name), alias)
    # Validated again: a principal's name must fit the field as a body's would.
    return validate_model(model, wire)


announce_mode()
