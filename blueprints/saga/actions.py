"""The compensable actions the app lets a ``saga`` take (``models.saga``).

A saga step names one of these, never a function: what runs and what undoes it is fixed here,
and only the entity key and the inputs come from the step.
"""

from models.saga import ActionCall, CompensableAction, register_compensable_action

__all__ = ["INVENTORY_RESERVATION", "PAYMENT"]

# Stock held for an order in its SKU's ``inventory`` entity; released when the order fails.
INVENTORY_RESERVATION = register_compensable_action(
    CompensableAction(
        name="inventory_reservation",
        forward=ActionCall(entity="inventory", operation="reserve"),
        compensation=ActionCall(entity="inventory", operation="release"),
    )
)

# A charge taken for an order; refunded (once per order, by its idempotency key) when it fails.
PAYMENT = register_compensable_action(
    CompensableAction(
        name="payment",
        forward=ActionCall(activity="charge_payment"),
        compensation=ActionCall(activity="refund_payment"),
    )
)
