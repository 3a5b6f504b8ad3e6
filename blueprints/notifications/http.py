"""``GET /api/notifications``: list the outbox by recipient, instance or category, page by page."""

import azure.durable_functions as df
import azure.functions as func

from blueprints import identity
from blueprints.http_errors import (
    json_errors,
    list_page_response,
)
from blueprints.notifications.outbox import list_notifications
from models.notifications import NotificationListQuery

bp = df.Blueprint()


@bp.route(route="notifications", methods=["GET"])
@json_errors
async def list_outbox(req: func.HttpRequest) -> func.HttpResponse:
    """List notifications: ``?recipient=&instanceId=&category=&top=&continuationToken=``."""
    identity.require_self(req, req.params.get("recipient"), "recipient")
    return await list_page_response(req, NotificationListQuery, list_notifications)
