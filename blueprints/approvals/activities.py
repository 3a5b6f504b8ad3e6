"""Activities of the approval workflows: the inbox read model and placing an approved order.

Notifications go through the shared ``send_notification`` activity (blueprints.notifications).
"""

import json
from datetime import UTC, datetime

import azure.durable_functions as df
from azure.data.tables import UpdateMode

from blueprints.app_storage import safe_key, table
from blueprints.approvals.inbox import record_task
from models.approvals import ApprovalTaskUpdate, PlacePurchaseOrderInput

bp = df.Blueprint()

PURCHASE_ORDERS_TABLE = "PurchaseOrders"


# A bare ``dict``: the worker checks binding annotations with isinstance(..., type), which a
# parameterised ``dict[str, Any]`` does not pass on every worker version.
@bp.activity_trigger(input_name="payload")
def record_approval_task(payload: dict) -> dict:
    """Write a level's state to the inboxes of its approver and delegates (an upsert).

    Parameters
    ----------
    payload : dict
        A :class:`~models.approvals.ApprovalTaskUpdate` as JSON.

    Returns
    -------
    dict
        ``{"rows": n}``: how many inbox rows were written.
    """
    update = ApprovalTaskUpdate.model_validate(payload)
    return {"rows": record_task(update)}


def place_order(order: PlacePurchaseOrderInput) -> None:
    """Record an approved purchase order; keyed by instance, so a repeat rewrites the same row.

    Parameters
    ----------
    order : PlacePurchaseOrderInput
        The approved order.
    """
    table(PURCHASE_ORDERS_TABLE).upsert_entity(
        {
            "PartitionKey": "orders",
            "RowKey": safe_key(order.instance_id),
            "OrderId": order.order_id or "",
            "ApprovedBy": order.approved_by,
            "Payload": json.dumps(order.to_wire()),
            "PlacedAt": datetime.now(UTC),
        },
        mode=UpdateMode.REPLACE,
    )


@bp.activity_trigger(input_name="payload")
def place_purchase_order(payload: dict) -> dict:
    """Place an approved purchase order (write it to the ``PurchaseOrders`` table).

    Parameters
    ----------
    payload : dict
        A :class:`~models.approvals.PlacePurchaseOrderInput` as JSON.

    Returns
    -------
    dict
        ``{"ok": True, "instanceId": ...}``.
    """
    order = PlacePurchaseOrderInput.model_validate(payload)
    place_order(order)
    return {"ok": True, "instanceId": order.instance_id}
