"""Payment and shipping providers: small interfaces, and test-mode defaults keeping a ledger.

The default providers behave like a payment provider's test mode: the card token decides the
outcome (``tok_visa`` succeeds, ``tok_decline`` is declined, ``tok_transient_N`` fails
transiently N times then succeeds, ``tok_refund_fails`` charges but cannot be refunded), and an
address with zip code ``00000`` or a street containing ``undeliverable`` cannot be shipped to.

Every call is keyed by an idempotency key ``{orderId}:{step}``: the ledger row of that key is
the provider's memory, so an activity that runs twice charges, refunds or ships once. Rows are
written with optimistic concurrency (create, or replace on an unchanged ETag), so two copies of
one activity running at once cannot both charge.
"""

from __future__ import annotations

import re
import zlib
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from blueprints.app_storage import safe_key, table
from models.orders import (
    ChargePaymentInput,
    CreateShipmentInput,
    PaymentResult,
    RefundPaymentInput,
    RefundResult,
    ShipmentResult,
)

__all__ = [
    "PAYMENT_LEDGER",
    "SHIPMENTS",
    "LedgerPaymentProvider",
    "LedgerShippingProvider",
    "PaymentProvider",
    "ShippingProvider",
]

PAYMENT_LEDGER = "PaymentLedger"
SHIPMENTS = "Shipments"
_TRANSIENT = re.compile(r"^tok_transient_(\d+)$")


class PaymentProvider(Protocol):
    """Charges and refunds, idempotent by ``{orderId}:charge`` and ``{orderId}:refund``."""

    def charge(self, request: ChargePaymentInput) -> PaymentResult: ...

    def refund(self, request: RefundPaymentInput) -> RefundResult: ...


class ShippingProvider(Protocol):
    """Creates shipments, idempotent by ``{orderId}:shipment``."""

    def create_shipment(self, request: CreateShipmentInput) -> ShipmentResult: ...


def _cents(amount: float) -> int:
    return round(amount * 100)


class _Ledger:
    """One ledger table: rows keyed (order, step), updated under optimistic concurrency."""

    def __init__(self, name: str) -> None:
        self.name = name

    def client(self) -> TableClient:
        return table(self.name)

    def read(self, order_id: str, step: str) -> dict[str, Any] | None:
        try:
            entity = self.client().get_entity(safe_key(order_id), step)
        except ResourceNotFoundError:
            return None
        return {**entity, "etag": entity.metadata["etag"]}

    def write(self, row: dict[str, Any], previous: dict[str, Any] | None) -> bool:
        """Create the row, or replace ``previous``; False when someone else wrote first."""
        try:
            if previous is None:
                self.client().create_entity(row)
            else:
                self.client().update_entity(
                    row,
                    mode=UpdateMode.REPLACE,
                    etag=previous["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError):
            return False
        return True


class LedgerPaymentProvider:
    """The test-mode payment provider over the ``PaymentLedger`` table.

    Rows: PartitionKey the order ID, RowKey ``charge`` or ``refund``; ``Status`` is
    ``pending`` (transient failures so far, counted in ``Attempts``), ``succeeded``,
    ``declined`` or ``failed``; ``AmountCents`` the money moved.
    """

    def __init__(self) -> None:
        self.ledger = _Ledger(PAYMENT_LEDGER)

    def charge(self, request: ChargePaymentInput) -> PaymentResult:
        """Charge once per order; a repeat answers the recorded outcome."""
        while True:
            row = self.ledger.read(request.order_id, "charge")
            if row is not None and row["Status"] in ("succeeded", "declined"):
                return self._charge_result(row)
            attempts = (row or {}).get("Attempts", 0) + 1
            status = "succeeded"
            match = _TRANSIENT.match(request.token)
            if request.token == "tok_decline":
                status = "declined"
            elif match and attempts <= int(match.group(1)):
                status = "pending"
            new_row = {
                "PartitionKey": safe_key(request.order_id),
                "RowKey": "charge",
                "IdempotencyKey": f"{request.order_id}:charge",
                "Status": status,
                "Attempts": attempts,
                "AmountCents": _cents(request.amount) if status == "succeeded" else 0,
                "Currency": request.currency,
                "Token": request.token,
                "ChargeId": f"ch_{safe_key(request.order_id)}" if status == "succeeded" else "",
            }
            if self.ledger.write(new_row, row):
                return self._charge_result(new_row)

    @staticmethod
    def _charge_result(row: dict[str, Any]) -> PaymentResult:
        attempts = int(row.get("Attempts", 0))
        if row["Status"] == "succeeded":
            amount = row["AmountCents"] / 100
            return PaymentResult(
                ok=True, charge_id=row["ChargeId"], amount=amount, attempts=attempts
            )
        if row["Status"] == "declined":
            return PaymentResult(
                ok=False, error_code="declined", detail="card declined", attempts=attempts
            )
        return PaymentResult(
            ok=False, error_code="transient", detail="payment provider busy", attempts=attempts
        )

    def refund(self, request: RefundPaymentInput) -> RefundResult:
        """Refund the order's charge once; nothing charged means nothing to refund (ok)."""
        while True:
            charge = self.ledger.read(request.order_id, "charge")
            if charge is None or charge["Status"] != "succeeded":
                return RefundResult(ok=True, detail="nothing was charged")
            row = self.ledger.read(request.order_id, "refund")
            if row is not None and row["Status"] == "succeeded":
                return RefundResult(
                    ok=True, refund_id=row["RefundId"], amount=row["AmountCents"] / 100
                )
            failing = charge["Token"] == "tok_refund_fails"
            new_row = {
                "PartitionKey": safe_key(request.order_id),
                "RowKey": "refund",
                "IdempotencyKey": f"{request.order_id}:refund",
                "Status": "failed" if failing else "succeeded",
                "Attempts": (row or {}).get("Attempts", 0) + 1,
                "AmountCents": 0 if failing else charge["AmountCents"],
                "Currency": charge["Currency"],
                "RefundId": "" if failing else f"re_{safe_key(request.order_id)}",
                "Reason": request.reason,
            }
            if not self.ledger.write(new_row, row):
                continue
            if failing:
                return RefundResult(
                    ok=False, error_code="refund_failed", detail="the provider refused the refund"
                )
            return RefundResult(
                ok=True, refund_id=new_row["RefundId"], amount=charge["AmountCents"] / 100
            )


class LedgerShippingProvider:
    """The test-mode shipping provider over the ``Shipments`` table (RowKey ``shipment``)."""

    def __init__(self) -> None:
        self.ledger = _Ledger(SHIPMENTS)

    def create_shipment(self, request: CreateShipmentInput) -> ShipmentResult:
        """Create the order's shipment once; an undeliverable address is refused."""
        address = request.address
        if address.zip_code == "00000" or "undeliverable" in address.street.lower():
            return ShipmentResult(
                ok=False,
                error_code="undeliverable",
                detail=f"no carrier delivers to {address.street}, {address.zip_code}",
            )
        row = self.ledger.read(request.order_id, "shipment")
        if row is None:
            key = safe_key(request.order_id)
            row = {
                "PartitionKey": key,
                "RowKey": "shipment",
                "IdempotencyKey": f"{request.order_id}:shipment",
                "ShipmentId": f"sh_{key}",
                "TrackingNumber": f"TRK{zlib.crc32(key.encode()):010d}",
                "Carrier": "TestCarrier",
                "Status": "created",
                "Units": sum(item.quantity for item in request.items),
            }
            if not self.ledger.write(row, None):
                row = self.ledger.read(request.order_id, "shipment") or row
        return ShipmentResult(
            ok=True,
            shipment_id=row["ShipmentId"],
            tracking_number=row["TrackingNumber"],
            carrier=row["Carrier"],
        )
