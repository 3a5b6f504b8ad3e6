"""Models of the notification outbox: what a workflow tells a person, and how it is listed.

Workflows do not send mail themselves: they write a notification to the outbox table, and a
delivery process (out of scope here) or a person's inbox view reads it. Writing is idempotent by
``notificationId``, which the orchestrator derives deterministically, so an activity that runs
twice records one notification.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.common import ContinuationToken, QueryText, WireModel
from models.ids import InstanceId

__all__ = ["Notification", "NotificationListQuery", "NotificationPage", "SendNotificationInput"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class SendNotificationInput(WireModel):
    """Input of the ``send_notification`` activity."""

    notification_id: str = Field(
        min_length=1,
        max_length=400,
        description="Deterministic ID (e.g. '{instanceId}:{purpose}'); a repeat is a no-op.",
    )
    recipient: str = Field(min_length=1, max_length=320, description="An email address or role.")
    category: str = Field(min_length=1, max_length=100, description="e.g. 'order_confirmation'.")
    subject: str = Field(min_length=1, max_length=500)
    body: str = Field(default="", max_length=16_000)
    link: str | None = Field(default=None, max_length=2048, description="Where to act on it.")
    workflow: str = Field(min_length=1, max_length=100, description="The sending orchestrator.")
    instance_id: str = Field(min_length=1, max_length=256)


class Notification(SendNotificationInput):
    """A notification as stored in the outbox and listed."""

    created_at: datetime


class NotificationListQuery(WireModel):
    """Query string of ``GET /api/notifications``."""

    recipient: QueryText | None = None
    instance_id: InstanceId | None = None
    category: QueryText | None = None
    top: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    continuation_token: ContinuationToken | None = None


class NotificationPage(WireModel):
    """Body of ``GET /api/notifications``: one page (by recipient, then ID) and the next token."""

    notifications: list[Notification]
    continuation_token: str | None = None
