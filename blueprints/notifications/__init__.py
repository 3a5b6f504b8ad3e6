"""The notification outbox shared by the workflows: a ``send_notification`` activity writing to
the ``Notifications`` table, and ``GET /api/notifications`` listing it."""
