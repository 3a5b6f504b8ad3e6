"""Who may approve a large order or resolve its failed compensation.

The designated deciders are the people listed in the app setting ``ORDER_APPROVERS``
(comma-separated identities, compared as :meth:`blueprints.identity.Principal.is_` compares
them: the principal's name and address claims, without case) and the signed-in callers who
hold the app role named by ``ORDER_APPROVER_ROLE`` (an Entra ID app role, which App Service
Authentication passes as ``roles`` claims). One list for both decisions: an approval and a
manual resolution are both a person vouching for somebody else's order.

Separation of duties comes first: the order's own customer (its ``customerEmail`` or
``customerId``) never decides their order, listed or not.

Neither setting set: with ``WORKFLOW_AUTH=easyauth`` nobody may decide (403 naming the
settings), so a deployment that forgot them does not let every signed-in caller approve; with
``none`` (local development) anybody but the customer may, as the quick start does.

The routes check this before they raise anything, on every request (a retry too), with the
settings as they are now: a person taken off the list cannot decide the orders that still wait.
The orchestrator does not check it: it would need the list in its input (settings read at
replay time are not deterministic), and then a person removed from the list could still decide
every order placed before. Nothing else raises these events for a caller: the generic events
route refuses them (``EventHasOwnRoute``) and ``process_order`` is not started through the
generic starter; only an operator's tools (the monitor, the host's keyed webhook API) raise
them around the routes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import azure.functions as func

from blueprints import identity
from blueprints.http_errors import ApiError

__all__ = ["APPROVERS_SETTING", "APPROVER_ROLE_SETTING", "require_decider"]

APPROVERS_SETTING = "ORDER_APPROVERS"
APPROVER_ROLE_SETTING = "ORDER_APPROVER_ROLE"


def _listed(setting: str) -> list[str]:
    return [part.strip().lower() for part in setting.split(",") if part.strip()]


def _customer(order_input: Any) -> list[str]:
    if not isinstance(order_input, dict):
        return []
    found = (order_input.get("customerEmail"), order_input.get("customerId"))
    return [value for value in found if isinstance(value, str) and value.strip()]


def _matches(principal: identity.Principal | None, person: str, names: Iterable[str]) -> bool:
    """Whether the caller (the principal, else the body's ``person``) is one of ``names``."""
    if principal is not None:
        return any(principal.is_(name) for name in names)
    return person.strip().lower() in {name.strip().lower() for name in names}


def _forbidden(code: str, message: str, field: str, detail: str) -> ApiError:
    return ApiError(403, code, message, [{"field": field, "code": "forbidden", "message": detail}])


def require_decider(
    req: func.HttpRequest, order_input: Any, person: str, field: str, what: str
) -> None:
    """Refuse a caller who may not decide the order (403), before anything is raised.

    Parameters
    ----------
    req : azure.functions.HttpRequest
        The request (its principal, when it carries one).
    order_input : Any
        The order's input as JSON (``customerEmail``, ``customerId``).
    person : str
        Who the body names, already checked against the principal (``identity``).
    field : str
        The body's field naming them (``approver``, ``resolvedBy``).
    what : str
        What they ask to do, for the message (``"approve order 'o-1'"``).

    Raises
    ------
    ApiError
        403 ``OwnOrder`` for the order's customer; 403 ``NotAnApprover`` for anyone not
        designated (with ``easyauth``, anyone at all when no approvers are designated).
    """
    principal = identity.read_principal(req)
    customer = _customer(order_input)
    if not customer:
        # Every order names its customer; an input that does not cannot show who may decide.
        raise _forbidden(
            "OwnOrder",
            f"{person} may not {what}: the order's customer cannot be read.",
            field,
            "the order's customer is unknown",
        )
    if _matches(principal, person, customer) or _matches(None, person, customer):
        raise _forbidden(
            "OwnOrder",
            f"{person} may not {what}: it is their own order, and a customer never decides "
            "their own order.",
            field,
            "the order's own customer",
        )
    approvers = _listed(os.environ.get(APPROVERS_SETTING, ""))
    role = os.environ.get(APPROVER_ROLE_SETTING, "").strip()
    if not approvers and not role:
        if identity.auth_mode() is identity.AuthMode.NONE:
            return
        raise _forbidden(
            "NotAnApprover",
            f"{person} may not {what}: no approvers are designated (set the app setting "
            f"{APPROVERS_SETTING} or {APPROVER_ROLE_SETTING}).",
            field,
            "no approvers are designated",
        )
    if _matches(principal, person, approvers):
        return
    if role and principal is not None and role in principal.roles:
        return
    holders = f" or holders of the role '{role}'" if role else ""
    listed = f"the people in {APPROVERS_SETTING}" if approvers else ""
    only = f"{listed}{holders}".removeprefix(" or ")
    raise _forbidden(
        "NotAnApprover",
        f"{person} may not {what}: only {only} may.",
        field,
        "not a designated approver",
    )
