"""Who the caller is (blueprints.identity): the App Service principal, the two modes, the checks."""

from __future__ import annotations

import base64
import json
from typing import Any

import azure.functions as func
import pytest

from blueprints import identity
from blueprints.http_errors import ApiError
from models.approvals import PurchaseOrderApprovalEvent


def principal_headers(name: str, *emails: str, provider: str = "aad") -> dict[str, str]:
    """Headers as App Service Authentication sets them for a signed-in person."""
    claims = [{"typ": "preferred_username", "val": name}]
    claims += [{"typ": "emails", "val": email} for email in emails]
    payload = {
        "auth_typ": provider,
        "claims": claims,
        "name_typ": "preferred_username",
        "role_typ": "roles",
    }
    return {
        "X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(payload).encode()).decode(),
        "X-MS-CLIENT-PRINCIPAL-NAME": name,
        "X-MS-CLIENT-PRINCIPAL-ID": "00000000-0000-0000-0000-000000000001",
        "X-MS-CLIENT-PRINCIPAL-IDP": provider,
    }


def request(headers: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest("POST", "http://localhost/api/x", headers=headers or {}, body=b"")


def refusal(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


@pytest.fixture
def easyauth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(identity.AUTH_SETTING, "easyauth")


@pytest.fixture
def no_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(identity.AUTH_SETTING, "none")
    monkeypatch.delenv("WEBSITE_INSTANCE_ID", raising=False)


def test_the_principal_is_read_from_the_app_service_headers() -> None:
    principal = identity.read_principal(request(principal_headers("Kim@Example.com", "k@x.io")))
    assert principal is not None
    assert principal.name == "Kim@Example.com" and principal.provider == "aad"
    assert principal.is_("kim@example.com") and principal.is_("K@X.io")
    assert not principal.is_("lee@example.com")
    assert identity.read_principal(request()) is None


@pytest.mark.parametrize(
    "encoded", ["%%%", base64.b64encode(b"[1]").decode(), base64.b64encode(b"{").decode()]
)
def test_an_unreadable_principal_is_401(encoded: str) -> None:
    error = refusal(lambda: identity.read_principal(request({"X-MS-CLIENT-PRINCIPAL": encoded})))
    assert (error.status, error.code) == (401, "InvalidPrincipal")


def test_easyauth_needs_a_principal_and_the_body_must_name_it(easyauth: None) -> None:
    error = refusal(lambda: identity.resolve_actor(request(), "kim@example.com", "approver"))
    assert (error.status, error.code) == (401, "Unauthenticated")

    kim = request(principal_headers("kim@example.com"))
    assert identity.resolve_actor(kim, "KIM@example.com", "approver") == "KIM@example.com"
    assert identity.resolve_actor(kim, None, "approver") == "kim@example.com"
    error = refusal(lambda: identity.resolve_actor(kim, "lee@example.com", "approverEmail"))
    assert (error.status, error.code) == (403, "IdentityMismatch")
    assert error.details[0]["field"] == "approverEmail"


def test_none_takes_the_body_but_a_principal_still_wins(no_auth: None) -> None:
    assert identity.resolve_actor(request(), "lee@example.com", "approver") == "lee@example.com"
    kim = request(principal_headers("kim@example.com"))
    error = refusal(lambda: identity.resolve_actor(kim, "lee@example.com", "approver"))
    assert error.status == 403


def test_mode_defaults_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(identity.AUTH_SETTING, raising=False)
    monkeypatch.delenv("WEBSITE_INSTANCE_ID", raising=False)
    assert identity.auth_mode() is identity.AuthMode.NONE
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc")  # on App Service
    assert identity.auth_mode() is identity.AuthMode.EASYAUTH
    monkeypatch.setenv(identity.AUTH_SETTING, "none")  # local development only
    assert identity.auth_mode() is identity.AuthMode.EASYAUTH
    monkeypatch.delenv("WEBSITE_INSTANCE_ID")
    monkeypatch.setenv(identity.AUTH_SETTING, "typo")  # fails closed
    assert identity.auth_mode() is identity.AuthMode.EASYAUTH


def test_listing_someone_elses_items_is_refused(easyauth: None) -> None:
    kim = request(principal_headers("kim@example.com"))
    identity.require_self(kim, "Kim@Example.com", "approver")
    assert refusal(lambda: identity.require_self(kim, "lee@example.com", "approver")).status == 403
    assert refusal(lambda: identity.require_self(kim, None, "recipient")).status == 403
    assert refusal(lambda: identity.require_self(request(), "kim@example.com", "x")).status == 401


def test_declared_identity_fields_are_bound_to_the_principal(easyauth: None) -> None:
    kim = request(principal_headers("kim@example.com"))
    event = PurchaseOrderApprovalEvent(approver="kim@example.com")
    assert identity.bind_identities(kim, event).approver == "kim@example.com"
    forged = PurchaseOrderApprovalEvent(approver="cfo@example.com")
    assert refusal(lambda: identity.bind_identities(kim, forged)).status == 403


def test_the_principals_app_roles_are_read_from_its_role_claims() -> None:
    """Entra ID app roles arrive as ``roles`` claims; ``role_typ`` names the role claim too."""
    payload = {
        "auth_typ": "aad",
        "claims": [
            {"typ": "preferred_username", "val": "kim@example.com"},
            {"typ": "roles", "val": "OrderApprover"},
            {"typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "val": "Ops"},
            {"typ": "groups", "val": "not-a-role"},
        ],
        "name_typ": "preferred_username",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()
    principal = identity.read_principal(request({"X-MS-CLIENT-PRINCIPAL": encoded}))
    assert principal is not None and principal.roles == {"OrderApprover", "Ops"}
    plain = identity.read_principal(request(principal_headers("kim@example.com")))
    assert plain is not None and plain.roles == frozenset()


@pytest.mark.parametrize("value", [{"first": "Kim"}, ["kim@example.com"], 12345, True, None])
def test_a_claim_that_is_not_a_string_is_left_out(easyauth: None, value: Any) -> None:
    """App Service writes claims as strings; another value's Python text once named the caller
    in a 403 ("the signed-in caller is {'first': 'Kim'}")."""
    payload = {
        "auth_typ": ["aad"],
        "claims": [{"typ": "preferred_username", "val": value}, {"typ": "roles", "val": value}],
        "name_typ": "preferred_username",
        "role_typ": {"typ": "roles"},
    }
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()
    headers = {"X-MS-CLIENT-PRINCIPAL": encoded, "X-MS-CLIENT-PRINCIPAL-ID": "id-1"}

    principal = identity.read_principal(request(headers))
    error = refusal(lambda: identity.resolve_actor(request(headers), "lee@x.io", "approver"))

    assert principal is not None
    assert (principal.name, principal.provider, principal.claims) == (None, None, ())
    assert principal.roles == frozenset() and principal.role_type is None
    assert error.status == 403
    assert error.message == (
        "approver names 'lee@x.io', but the signed-in caller is id-1; "
        "a request may only act for the person who sends it."
    )
    only_claims = {"X-MS-CLIENT-PRINCIPAL": encoded}
    unnamed = refusal(lambda: identity.read_principal(request(only_claims)))
    assert (unnamed.status, unnamed.code) == (401, "InvalidPrincipal")
