"""Models of the ``inventory`` entity (one per SKU): its state, operation inputs and answers.

Stock moves between three places: ``available`` (can be reserved), ``reserved`` (held for an
order, listed in ``reservations`` by reservation ID) and gone (committed: shipped). Every
operation is idempotent by its ID: the entity remembers recently settled IDs, so a repeated
reserve, release or commit, or a repeated restock with the same ``restockId``, changes nothing.

A reservation may carry ``expiresAt``: once past it, the stock goes back to ``available`` at
the SKU's next operation (and reads show it so at once), so an order that is stuck or failed
without releasing does not hold stock for ever.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from models.common import WireModel

__all__ = [
    "INVENTORY_ENTITY",
    "InventoryOutcome",
    "InventoryState",
    "InventoryView",
    "ReservationRequest",
    "RestockRequest",
    "Sku",
]

INVENTORY_ENTITY = "inventory"

Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
OperationId = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class InventoryState(WireModel):
    """The state an ``inventory`` entity keeps."""

    available: int = 0
    reserved: int = 0
    reservations: dict[str, int] = Field(default_factory=dict)
    expires: dict[str, datetime] = Field(
        default_factory=dict, description="When each reservation that has a limit expires."
    )
    settled: dict[str, Literal["committed", "released", "restocked", "expired"]] = Field(
        default_factory=dict,
        description="Recently finished reservation and restock IDs (bounded), for idempotency.",
    )


class RestockRequest(WireModel):
    """Input of the ``add`` operation (also the body of ``POST /api/inventory/{sku}``)."""

    quantity: int = Field(gt=0, le=1_000_000, description="Units to add to the available stock.")
    restock_id: OperationId | None = Field(
        default=None, description="Optional idempotency key: the same ID adds the stock once."
    )


class ReservationRequest(WireModel):
    """Input of ``reserve`` (quantity needed), ``release`` and ``commit``."""

    reservation_id: OperationId
    quantity: int = Field(default=0, ge=0, le=1_000_000)
    expires_at: datetime | None = Field(
        default=None,
        description="reserve: when the hold ends unless committed or released (none: never); "
        "reserving an ID held already moves its limit.",
    )


class InventoryOutcome(WireModel):
    """The answer of every operation: an envelope, never an exception, for business outcomes."""

    ok: bool
    error_code: (
        Literal["out_of_stock", "unknown_reservation", "invalid_request", "reservation_expired"]
        | None
    ) = None
    detail: str | None = None
    sku: str
    reservation_id: str | None = None
    quantity: int = 0
    available: int = 0
    reserved: int = 0


class InventoryView(WireModel):
    """Body of ``GET /api/inventory/{sku}``."""

    sku: str
    available: int
    reserved: int
    reservations: dict[str, int]
    expires_at: dict[str, datetime] = Field(
        default_factory=dict, description="The limit of each reservation that has one."
    )
