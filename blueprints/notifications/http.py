"""``GET /api/notifications``: list the outbox by recipient, instance or category, page by page."""

import azure.durable_functions as df
import azure.functions as func

from blueprints.app_storage import in_thread
from blueprints.http_errors import (
    invalid_continuation_token,
    json_errors,
    json_response,
    validate_model,
)
from blueprints.notifications.outbox import list_notifications
from models.notifications import NotificationListQuery

bp = df.Blueprint()


@bp.route(route="notifications", methods=["GET"])
@json_errors
async def list_outbox(req: func.HttpRequest) -> func.HttpResponse:
    """List notifications: ``?recipient=&instanceId=&category=&top=&continuationToken=``."""
    query = validate_model(NotificationListQuery, dict(req.params), source="query")
    try:
        page = await in_thread(list_notifications, query)
    except ValueError as error:
        raise invalid_continuation_token(error) from error
    return json_response(page.to_wire())
