"""The notification outbox shared by the workflows: a ``send_notification`` activity writing to
the ``Notifications`` table, and ``GET /api/notifications`` listing it."""

from blueprints.notifications import activities, http

# What function_app.py registers: every blueprint of the package.
BLUEPRINTS = (activities.bp, http.bp)
