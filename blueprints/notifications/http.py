"""``GET /api/notifications``: list the outbox by recipient, instance or category, page by page."""

import azure.durable_functions as df
import azure.functions as func

from blueprints.http_errors import list_page_response
from blueprints.http_input import endpoint, read_query
from blueprints.notifications.outbox import list_notifications
from models.notifications import NotificationListQuery, NotificationPage

bp = df.Blueprint()


@bp.route(route="notifications", methods=["GET"])
@endpoint(query=NotificationListQuery, responses={200: NotificationPage})
async def list_outbox(req: func.HttpRequest) -> func.HttpResponse:
    """List notifications: ``?recipient=&instanceId=&category=&top=&continuationToken=``."""
    return await list_page_response(read_query(req, NotificationListQuery), list_notifications)
