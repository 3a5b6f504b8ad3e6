"""Activities of the order saga: payment, refund, shipment, tracking and the read model.

Each holds the I/O of one step and is idempotent by a key derived from the order ID and the
step (the ledger rows of :mod:`blueprints.orders.providers`), because activities run at least
once. Business outcomes (declined, transient, undeliverable, refund refused) come back as
envelopes; only faults raise.
"""

import azure.durable_functions as df

from blueprints.app_storage import safe_key, table
from blueprints.orders.providers import (
    SHIPMENTS,
    LedgerPaymentProvider,
    LedgerShippingProvider,
    PaymentProvider,
    ShippingProvider,
)
from blueprints.orders.read_model import record_order as write_order_row
from models.orders import (
    ChargePaymentInput,
    CreateShipmentInput,
    RecordOrderInput,
    RefundPaymentInput,
    TrackDeliveryInput,
)

bp = df.Blueprint()

# The providers in use; tests or another deployment may swap in their own implementations.
payments: PaymentProvider = LedgerPaymentProvider()
shipping: ShippingProvider = LedgerShippingProvider()


@bp.activity_trigger(input_name="payload")
def charge_payment(payload: dict) -> dict:
    """Charge the order's total once (key ``{orderId}:charge``).

    Parameters
    ----------
    payload : dict
        A :class:`~models.orders.ChargePaymentInput` as JSON.

    Returns
    -------
    dict
        A :class:`~models.orders.PaymentResult`: ``errorCode`` ``transient`` asks for a retry,
        ``declined`` is final.
    """
    return payments.charge(ChargePaymentInput.model_validate(payload)).to_wire()


@bp.activity_trigger(input_name="payload")
def refund_payment(payload: dict) -> dict:
    """Refund the order's charge once (key ``{orderId}:refund``); the charge's compensation.

    Parameters
    ----------
    payload : dict
        A :class:`~models.orders.RefundPaymentInput` as JSON.

    Returns
    -------
    dict
        A :class:`~models.orders.RefundResult`; ``ok: false`` when the provider refused.
    """
    return payments.refund(RefundPaymentInput.model_validate(payload)).to_wire()


@bp.activity_trigger(input_name="payload")
def create_shipment(payload: dict) -> dict:
    """Create the order's shipment once (key ``{orderId}:shipment``).

    Parameters
    ----------
    payload : dict
        A :class:`~models.orders.CreateShipmentInput` as JSON.

    Returns
    -------
    dict
        A :class:`~models.orders.ShipmentResult`; ``undeliverable`` is a business failure.
    """
    return shipping.create_shipment(CreateShipmentInput.model_validate(payload)).to_wire()


@bp.activity_trigger(input_name="payload")
def register_delivery_tracking(payload: dict) -> dict:
    """Register the shipment with the carrier's tracking (a ``tracking`` row, written once).

    Parameters
    ----------
    payload : dict
        A :class:`~models.orders.TrackDeliveryInput` as JSON.

    Returns
    -------
    dict
        ``{"trackingNumber", "status": "in_transit", "trackingUrl"}``.
    """
    request = TrackDeliveryInput.model_validate(payload)
    url = f"https://tracking.example.com/{request.tracking_number}"
    table(SHIPMENTS).upsert_entity(
        {
            "PartitionKey": safe_key(request.order_id),
            "RowKey": "tracking",
            "ShipmentId": request.shipment_id,
            "TrackingNumber": request.tracking_number,
            "Status": "in_transit",
            "TrackingUrl": url,
        }
    )
    return {"trackingNumber": request.tracking_number, "status": "in_transit", "trackingUrl": url}


@bp.activity_trigger(input_name="payload")
def record_order(payload: dict) -> dict:
    """Record an order's transition in the ``Orders`` read model.

    Parameters
    ----------
    payload : dict
        A :class:`~models.orders.RecordOrderInput` as JSON.

    Returns
    -------
    dict
        ``{"written": bool}``: False when a newer transition was already recorded.
    """
    return {"written": write_order_row(RecordOrderInput.model_validate(payload))}
