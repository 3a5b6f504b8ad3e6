"""The ``send_notification`` activity: write one notification to the outbox, once."""

import azure.durable_functions as df

from blueprints.notifications.outbox import record_notification
from models.notifications import SendNotificationInput

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def send_notification(payload: dict) -> dict:
    """Record a notification in the outbox; a repeat of the same ID is a no-op.

    Parameters
    ----------
    payload : dict
        A :class:`~models.notifications.SendNotificationInput` as JSON.

    Returns
    -------
    dict
        ``{"notificationId": ..., "created": bool}``: ``created`` is False on a repeat.
    """
    request = SendNotificationInput.model_validate(payload)
    created = record_notification(request)
    return {"notificationId": request.notification_id, "created": created}
