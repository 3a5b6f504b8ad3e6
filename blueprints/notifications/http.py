"""``GET /api/notifications``: list the outbox by recipient, instance or category, page by page."""

import azure.durable_functions as df
import azure.functions as func

from blueprints import identity
from blueprints.http_errors import list_page_response
from blueprints.http_input import endpoint, read_query
from blueprints.notifications.outbox import list_notifications
from models.notifications import NotificationListQuery, NotificationPage

bp = df.Blueprint()


@bp.route(route="notifications", methods=["GET"])
@endpoint(query=NotificationListQuery, responses={200: NotificationPage}, errors=(403,))
async def list_outbox(req: func.HttpRequest) -> func.HttpResponse:
    """List notifications: ``?recipient=&instanceId=&category=&top=&continuationToken=``."""
    listing = read_query(req, NotificationListQuery)
    identity.require_self(req, listing.recipient, "recipient")
    return await list_page_response(listing, list_notifications)
