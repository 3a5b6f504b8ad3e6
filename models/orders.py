"""Models of the order-processing saga (``process_order``).

Ladder: :class:`OrderRequest` (``POST /api/orders``) -> :class:`OrderInput` (with settings) ->
step inputs and results (payment, shipment, read model) -> events (``ManagerApproval``,
``CancelOrder``, ``ManualResolution``) -> :class:`OrderStatus` (custom status) ->
:class:`OrderResult`. Money is in the order's currency with two decimals; the ledger keeps cents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from models.common import ContinuationToken, WireModel
from models.ids import IdempotencyKey, OrderId, Sku
from models.saga import BackoffPolicy, CompensationRecord

__all__ = [
    "CancelOrderEvent",
    "ChargePaymentInput",
    "CreateShipmentInput",
    "ManagerApprovalEvent",
    "ManualResolutionEvent",
    "OrderDecisionOutcome",
    "OrderDecisionRecord",
    "OrderInput",
    "OrderItem",
    "OrderListQuery",
    "OrderPage",
    "OrderRequest",
    "OrderResult",
    "OrderSettings",
    "OrderStatus",
    "OrderSummary",
    "PaymentDetails",
    "PaymentResult",
    "RecordOrderInput",
    "RefundPaymentInput",
    "RefundResult",
    "ReservationRecord",
    "ShipmentResult",
    "ShippingAddress",
    "TrackDeliveryInput",
]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Stage = Literal[
    "validating",
    "reserving_inventory",
    "awaiting_approval",
    "processing_payment",
    "creating_shipment",
    "finalizing",
    "compensating",
    "compensation_failed",
    "completed",
    "failed",
    "cancelled",
]
# The read model's statuses: the stage while running, then the outcome.
ListedStatus = Literal[
    "processing", "awaiting_approval", "compensation_failed", "completed", "failed", "cancelled"
]


class OrderItem(WireModel):
    """One line of an order. Quantities and prices are checked by the validate step."""

    product_id: Text
    sku: Sku
    name: Text
    quantity: int
    unit_price: float


class ShippingAddress(WireModel):
    """Where the shipment goes."""

    street: Text
    city: Text
    state: Text
    zip_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    country: Text


class PaymentDetails(WireModel):
    """How the customer pays; the token decides the test provider's outcome."""

    method: Literal["credit_card", "paypal", "bank_transfer"]
    token: Text = Field(examples=["tok_visa", "tok_decline", "tok_transient_3", "tok_refund_fails"])


class OrderSettings(WireModel):
    """The knobs of one order's saga (defaults suit production; tests shrink them)."""

    approval_threshold: float = Field(default=1000, ge=0, description="Totals at/above need one.")
    approval_timeout_hours: float = Field(default=24, gt=0, le=24 * 30)
    payment_retry: BackoffPolicy = Field(default_factory=BackoffPolicy)
    compensation_retry: BackoffPolicy = Field(
        default_factory=lambda: BackoffPolicy(
            first_delay_seconds=5, factor=2, max_delay_seconds=60, max_attempts=3
        )
    )
    reservation_hold_hours: float = Field(
        default=24,
        gt=0,
        le=24 * 30,
        description="How long reserved stock is held for the order beyond the approval wait; "
        "an order that has not shipped or released it by then loses it (renewed before "
        "payment).",
    )
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"


class OrderRequest(WireModel):
    """Body of ``POST /api/orders``; the order ID is also the instance ID."""

    order_id: OrderId
    customer_id: Text
    customer_email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)]
    items: list[OrderItem] = Field(max_length=100)
    shipping_address: ShippingAddress
    payment_details: PaymentDetails
    settings: OrderSettings = Field(default_factory=OrderSettings)


class OrderInput(OrderRequest):
    """Input of ``process_order`` (the request as validated; also the generic starter's body)."""


class ChargePaymentInput(WireModel):
    """Input of ``charge_payment``; the ledger key is ``{orderId}:charge``."""

    order_id: str
    customer_id: str
    amount: float = Field(gt=0)
    currency: str = "USD"
    method: str
    token: str
    attempt: int = Field(default=1, ge=1)


class PaymentResult(WireModel):
    """Result of ``charge_payment``: ``errorCode`` ``declined`` (final) or ``transient`` (retry)."""

    ok: bool
    error_code: Literal["declined", "transient", "payment_unavailable"] | None = None
    detail: str | None = None
    charge_id: str | None = None
    amount: float = 0
    attempts: int = 0


class RefundPaymentInput(WireModel):
    """Input of ``refund_payment`` (compensation of the charge); key ``{orderId}:refund``."""

    order_id: str
    reason: str = ""


class RefundResult(WireModel):
    """Result of ``refund_payment``; refunding an order never charged is a no-op success."""

    ok: bool
    error_code: Literal["refund_failed"] | None = None
    detail: str | None = None
    refund_id: str | None = None
    amount: float = 0


class CreateShipmentInput(WireModel):
    """Input of ``create_shipment``; key ``{orderId}:shipment``."""

    order_id: str
    address: ShippingAddress
    items: list[OrderItem]


class ShipmentResult(WireModel):
    """Result of ``create_shipment``; ``undeliverable`` is a business failure."""

    ok: bool
    error_code: Literal["undeliverable"] | None = None
    detail: str | None = None
    shipment_id: str | None = None
    tracking_number: str | None = None
    carrier: str | None = None


class TrackDeliveryInput(WireModel):
    """Input of the ``track_delivery`` sub-orchestration and its activity."""

    order_id: str
    shipment_id: str
    tracking_number: str


class RecordOrderInput(WireModel):
    """Input of ``record_order``: one upsert of the ``Orders`` read model."""

    order_id: str
    customer_id: str
    status: ListedStatus
    stage: Stage
    total: float
    failure_reason: str | None = None
    updated_at: datetime


class ReservationRecord(WireModel):
    """One SKU's reservation for the order."""

    sku: str
    reservation_id: str
    quantity: int
    status: Literal["reserved", "committed", "released", "expired"] = "reserved"
    expires_at: datetime | None = None


class ManagerApprovalEvent(WireModel):
    """Payload of ``ManagerApproval``."""

    identity_fields: ClassVar[tuple[str, ...]] = ("approver",)

    approved: bool
    approver: Text
    comment: str = Field(default="", max_length=2000)
    request_id: IdempotencyKey | None = Field(
        default=None,
        description="Names this decision's outcome; the route sets it (Idempotency-Key or new).",
    )


class CancelOrderEvent(WireModel):
    """Payload of ``CancelOrder`` (also the optional body of ``POST .../cancel``)."""

    reason: str = Field(default="cancelled by the customer", max_length=2000)


class ManualResolutionEvent(WireModel):
    """Payload of ``ManualResolution``: a person settled the compensations that kept failing."""

    identity_fields: ClassVar[tuple[str, ...]] = ("resolved_by",)

    resolved_by: Text
    note: str = Field(default="", max_length=2000)
    request_id: IdempotencyKey | None = Field(
        default=None,
        description="Names this resolution's outcome; the route sets it (Idempotency-Key or new).",
    )


class OrderDecisionRecord(WireModel):
    """A manager's approval or an operator's resolution as the order took it (custom status)."""

    by: str = Field(description="Who decided (the approver, or who resolved).")
    approved: bool | None = Field(
        default=None, description="The approval's verdict; None for a resolution."
    )
    request_id: str | None = Field(default=None, description="The request that made it.")
    decided_at: datetime
    text_fingerprint: str | None = Field(
        default=None,
        description="A digest of the request's comment (approval) or note (resolution), which "
        "the record does not keep, to tell a retry from another request reusing its "
        "Idempotency-Key; none on records kept before it was.",
    )


class OrderStatus(WireModel):
    """Custom status of ``process_order`` (kept small: the host caps it at 16 KB)."""

    stage: Stage
    order_id: str
    total: float
    payment_attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    approval: OrderDecisionRecord | None = None
    resolution: OrderDecisionRecord | None = None


class OrderDecisionOutcome(WireModel):
    """What became of one approval or resolution request on an order."""

    order_id: str
    kind: Literal["approval", "resolution"]
    request_id: str
    outcome: Literal["accepted", "refused", "pending"]
    code: str | None = Field(default=None, description="Why it was refused.")
    reason: str | None = None
    decision: OrderDecisionRecord | None = Field(
        default=None, description="The approval or resolution the order took."
    )


class OrderResult(WireModel):
    """Output of ``process_order``."""

    order_id: str
    status: Literal["completed", "failed", "cancelled"]
    total: float
    inventory_reservation: list[ReservationRecord] = Field(default_factory=list)
    payment: PaymentResult | None = None
    shipment: ShipmentResult | None = None
    tracking: dict[str, Any] | None = None
    failure_reason: str | None = None
    compensations: list[CompensationRecord] = Field(default_factory=list)
    manual_resolution: ManualResolutionEvent | None = None
    completed_at: datetime


class OrderListQuery(WireModel):
    """Query string of ``GET /api/orders``."""

    status: ListedStatus | None = None
    customer_id: str | None = Field(default=None, min_length=1, max_length=200)
    top: int = Field(default=50, ge=1, le=500)
    continuation_token: ContinuationToken | None = None


class OrderSummary(WireModel):
    """One row of the ``Orders`` read model."""

    order_id: str
    customer_id: str
    status: ListedStatus
    stage: Stage
    total: float
    failure_reason: str | None = None
    needs_attention: bool = False
    updated_at: datetime


class OrderPage(WireModel):
    """Body of ``GET /api/orders``."""

    orders: list[OrderSummary]
    continuation_token: str | None = None
