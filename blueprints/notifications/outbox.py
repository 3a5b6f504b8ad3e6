"""Reading and writing the outbox table, without any host: the logic behind the activity and route.

Layout: table ``Notifications``; PartitionKey the recipient (lower-cased), RowKey the
notification ID. Keying by the caller's deterministic ID is what makes a repeated write a no-op.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient

from blueprints.app_storage import query_page, safe_key, table
from models.notifications import (
    Notification,
    NotificationListQuery,
    NotificationPage,
    SendNotificationInput,
)

__all__ = ["OUTBOX_TABLE", "list_notifications", "record_notification"]

OUTBOX_TABLE = "Notifications"


def _outbox() -> TableClient:
    return table(OUTBOX_TABLE)


def record_notification(request: SendNotificationInput, now: datetime | None = None) -> bool:
    """Write a notification to the outbox once.

    Parameters
    ----------
    request : SendNotificationInput
        The notification; its ``notification_id`` identifies it.
    now : datetime | None
        The creation time recorded (defaults to the current UTC time).

    Returns
    -------
    bool
        True when written now, False when the same ID was already in the outbox.
    """
    entity: dict[str, Any] = {
        "PartitionKey": safe_key(request.recipient.lower()),
        "RowKey": safe_key(request.notification_id),
        "Payload": json.dumps(request.to_wire()),
        "InstanceId": request.instance_id,
        "Category": request.category,
        "CreatedAt": now or datetime.now(UTC),
    }
    try:
        _outbox().create_entity(entity)
    except ResourceExistsError:
        return False
    return True


def _filter(query: NotificationListQuery) -> tuple[str, dict[str, Any]]:
    # The SDK's @parameters quote the values, so a caller's text cannot change the filter.
    parameters: dict[str, Any] = {}
    if query.recipient:
        parameters["pk"] = safe_key(query.recipient.lower())
    if query.instance_id:
        parameters["instance"] = query.instance_id
    if query.category:
        parameters["category"] = query.category
    columns = {"pk": "PartitionKey", "instance": "InstanceId", "category": "Category"}
    text = " and ".join(f"{columns[name]} eq @{name}" for name in parameters)
    return text, parameters


def _from_entity(entity: dict[str, Any]) -> Notification:
    created = entity["CreatedAt"]
    return Notification.model_validate({**json.loads(entity["Payload"]), "createdAt": created})


def list_notifications(query: NotificationListQuery) -> NotificationPage:
    """Return one page of the outbox, filtered.

    Parameters
    ----------
    query : NotificationListQuery
        Filters (recipient, instance, category), page size and continuation token.

    Returns
    -------
    NotificationPage
        The notifications (by recipient, then ID) and the token of the next page, if any.

    Raises
    ------
    ValueError
        When the continuation token is not one this API produced.
    """
    text, parameters = _filter(query)
    page, token = query_page(_outbox(), text, parameters, query.top, query.continuation_token)
    return NotificationPage(
        notifications=[_from_entity(entity) for entity in page], continuation_token=token
    )
