"""The inventory entity's operations as plain functions over its state (no host needed).

Each operation takes the current :class:`~models.inventory.InventoryState` and returns the new
state with an :class:`~models.inventory.InventoryOutcome`. The entity runs one operation at a
time per SKU, which is what makes a reservation check-and-take without oversell.

Before each operation, reservations past their ``expiresAt`` go back to the available stock
(:func:`expire_due`): entities have no timers, so expiry happens at the SKU's next operation,
and the read route applies the same rule to what it shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from models.inventory import InventoryOutcome, InventoryState, ReservationRequest, RestockRequest

__all__ = ["MAX_SETTLED", "apply_operation", "expire_due"]

# Settled IDs are remembered so a late repeat is recognised; the oldest are forgotten first.
MAX_SETTLED = 5000


def _outcome(sku: str, state: InventoryState, **fields: Any) -> InventoryOutcome:
    return InventoryOutcome(
        sku=sku, available=state.available, reserved=state.reserved, **{"ok": True, **fields}
    )


def _settle(state: InventoryState, key: str, how: Any) -> None:
    state.settled[key] = how
    while len(state.settled) > MAX_SETTLED:
        del state.settled[next(iter(state.settled))]


def _add(sku: str, state: InventoryState, request: RestockRequest) -> InventoryOutcome:
    if request.restock_id is not None:
        key = f"restock:{request.restock_id}"
        if key in state.settled:
            return _outcome(sku, state, quantity=request.quantity, detail="already restocked")
        _settle(state, key, "restocked")
    state.available += request.quantity
    return _outcome(sku, state, quantity=request.quantity)


def expire_due(state: InventoryState, now: datetime) -> list[str]:
    """Give the stock of every reservation past its limit back; return their IDs.

    Parameters
    ----------
    state : InventoryState
        The state; changed in place.
    now : datetime
        The current time (UTC).

    Returns
    -------
    list[str]
        The reservations that expired now.
    """
    expired = [rid for rid, limit in state.expires.items() if limit <= now]
    for rid in expired:
        del state.expires[rid]
        quantity = state.reservations.pop(rid, 0)
        state.reserved -= quantity
        state.available += quantity
        _settle(state, rid, "expired")
    return expired


def _reserve(sku: str, state: InventoryState, request: ReservationRequest) -> InventoryOutcome:
    rid = request.reservation_id
    if rid in state.reservations:
        # Reserving again what is held (a repeat, or an order renewing its hold before it ships).
        if request.expires_at is not None:
            state.expires[rid] = request.expires_at
        return _outcome(sku, state, reservation_id=rid, quantity=state.reservations[rid])
    if state.settled.get(rid) == "expired":
        # The hold lapsed: take the stock again if it is still there (checked below).
        del state.settled[rid]
    if rid in state.settled:
        return _outcome(
            sku, state, ok=False, error_code="invalid_request", reservation_id=rid,
            detail=f"reservation '{rid}' was already {state.settled[rid]}",
        )  # fmt: skip
    if request.quantity <= 0:
        return _outcome(
            sku, state, ok=False, error_code="invalid_request", reservation_id=rid,
            detail="quantity must be positive",
        )  # fmt: skip
    if request.quantity > state.available:
        return _outcome(
            sku, state, ok=False, error_code="out_of_stock", reservation_id=rid,
            quantity=request.quantity,
            detail=f"{request.quantity} of '{sku}' requested, {state.available} available",
        )  # fmt: skip
    state.available -= request.quantity
    state.reserved += request.quantity
    state.reservations[rid] = request.quantity
    if request.expires_at is not None:
        state.expires[rid] = request.expires_at
    return _outcome(sku, state, reservation_id=rid, quantity=request.quantity)


def _settle_reservation(
    sku: str, state: InventoryState, request: ReservationRequest, how: str
) -> InventoryOutcome:
    rid = request.reservation_id
    quantity = state.reservations.pop(rid, None)
    if quantity is None:
        if how == "committed" and state.settled.get(rid) == "expired":
            # The stock went back to sale: committing it now would sell it twice.
            return _outcome(
                sku, state, ok=False, error_code="reservation_expired", reservation_id=rid,
                detail=f"reservation '{rid}' expired; its stock is available again",
            )  # fmt: skip
        # Releasing or committing twice, or releasing a reservation never made, changes nothing.
        detail = f"already {state.settled[rid]}" if rid in state.settled else "no such reservation"
        return _outcome(sku, state, reservation_id=rid, detail=detail)
    state.expires.pop(rid, None)
    state.reserved -= quantity
    if how == "released":
        state.available += quantity
    _settle(state, rid, how)
    return _outcome(sku, state, reservation_id=rid, quantity=quantity)


def apply_operation(
    sku: str, state: InventoryState, operation: str, payload: Any, now: datetime
) -> InventoryOutcome:
    """Apply one operation to a SKU's state, in place, after expiring what is due.

    Parameters
    ----------
    sku : str
        The entity key.
    state : InventoryState
        The state; changed in place.
    operation : str
        ``add``, ``reserve``, ``release``, ``commit`` or ``get``.
    payload : Any
        The operation's input as JSON (a :class:`RestockRequest` for ``add``, a
        :class:`ReservationRequest` otherwise).
    now : datetime
        The current time (UTC), for reservations with a limit.

    Returns
    -------
    InventoryOutcome
        The answer; an unknown operation or a bad payload is ``invalid_request``, committing
        an expired reservation ``reservation_expired``.
    """
    expire_due(state, now)
    try:
        if operation == "get":
            return _outcome(sku, state)
        if operation == "add":
            return _add(sku, state, RestockRequest.model_validate(payload))
        request = ReservationRequest.model_validate(payload)
        if operation == "reserve":
            return _reserve(sku, state, request)
        if operation in ("release", "commit"):
            how = "released" if operation == "release" else "committed"
            return _settle_reservation(sku, state, request, how)
    except ValidationError as error:
        return _outcome(sku, state, ok=False, error_code="invalid_request", detail=str(error))
    return _outcome(
        sku, state, ok=False, error_code="invalid_request", detail=f"unknown operation {operation}"
    )
