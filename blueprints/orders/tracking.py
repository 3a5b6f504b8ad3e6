"""The ``track_delivery`` sub-orchestration: hand a created shipment to delivery tracking.

Started by ``process_order`` next to the confirmation message, under the instance ID
``{orderId}:tracking``, so a replayed parent finds the same child instead of starting another.
"""

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from models.orders import TrackDeliveryInput

bp = df.Blueprint()

# Past the saga's pivot: keep trying rather than give up on a shipped order.
_TRACKING_RETRY = df.RetryOptions(
    first_retry_interval_in_milliseconds=5000, max_number_of_attempts=5
)


@bp.orchestration_trigger(context_name="context")
def track_delivery(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Register the shipment with the carrier's tracking and return its tracking link.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        Its input is a :class:`~models.orders.TrackDeliveryInput` as JSON.

    Returns
    -------
    dict[str, Any]
        ``{"trackingNumber", "status", "trackingUrl"}``.
    """
    request = TrackDeliveryInput.model_validate(context.get_input(expected_type=dict))
    context.set_custom_status({"stage": "registering", "trackingNumber": request.tracking_number})
    tracking = yield context.call_activity_with_retry(
        "register_delivery_tracking", _TRACKING_RETRY, request.to_wire()
    )
    context.set_custom_status(
        {"stage": tracking["status"], "trackingNumber": request.tracking_number}
    )
    return dict(tracking)
