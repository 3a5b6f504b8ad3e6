"""The per-workflow lists: the read models (documents, orders, approval tasks), batch progress."""

from __future__ import annotations

import json
from typing import Any

from blueprints.app_storage import table
from models.batches import BatchResult, BatchStatus
from models.documents import DocumentListQuery, DocumentState
from models.orders import OrderListQuery
from monitor_views.common import BATCH, LIST_LIMIT, listing, parse


def views() -> list[dict[str, Any]]:
    return [
        {"id": "documents", "title": "Documents", "description": "The Documents read model."},
        {"id": "orders", "title": "Orders", "description": "The Orders read model."},
        {
            "id": "approvals",
            "title": "Approvals",
            "description": "Approval tasks, one row per level and person who may decide it.",
        },
        {
            "id": "batches",
            "title": "Batches",
            "description": "Batch jobs and their progress.",
            "orchestrators": [BATCH],
        },
    ]


def view(view_id: str, params: dict[str, str], instances: list[dict[str, Any]]) -> dict[str, Any]:
    if view_id == "documents":
        return _documents(params)
    if view_id == "orders":
        return _orders(params)
    if view_id == "approvals":
        return _approvals(params)
    return _batches(instances)


def _documents(params: dict[str, str]) -> dict[str, Any]:
    from blueprints.documents.store import list_documents

    state = params.get("state") or None
    query = DocumentListQuery.model_validate(
        {"state": state, "top": LIST_LIMIT} if state else {"top": LIST_LIMIT}
    )
    rows = [
        {
            "id": doc.id,
            "title": doc.title,
            "state": doc.state.value,
            "stage": doc.stage,
            "revision": doc.revision,
            "creator": doc.creator,
            "updated": doc.updated_at.isoformat(),
        }
        for doc in list_documents(query).documents
    ]
    return listing(
        [
            ("id", "Document (instance)"),
            ("title", "Title"),
            ("state", "State"),
            ("stage", "Stage"),
            ("revision", "Revision"),
            ("creator", "Creator"),
            ("updated", "Updated"),
        ],
        rows,
        ("state", "State", [state.value for state in DocumentState]),
    )


def _orders(params: dict[str, str]) -> dict[str, Any]:
    from blueprints.orders.read_model import list_orders

    status = params.get("status") or None
    query = OrderListQuery.model_validate(
        {"status": status, "top": LIST_LIMIT} if status else {"top": LIST_LIMIT}
    )
    rows = [
        {
            "orderId": order.order_id,
            "customer": order.customer_id,
            "status": order.status,
            "stage": order.stage,
            "total": order.total,
            "failure": order.failure_reason,
            "attention": "yes" if order.needs_attention else "",
            "updated": order.updated_at.isoformat(),
        }
        for order in list_orders(query).orders
    ]
    return listing(
        [
            ("orderId", "Order (instance)"),
            ("customer", "Customer"),
            ("status", "Status"),
            ("stage", "Stage"),
            ("total", "Total"),
            ("failure", "Why it failed"),
            ("attention", "Needs a person"),
            ("updated", "Updated"),
        ],
        rows,
        (
            "status",
            "Status",
            [
                "processing",
                "awaiting_approval",
                "compensation_failed",
                "completed",
                "failed",
                "cancelled",
            ],
        ),
    )


def _approvals(params: dict[str, str]) -> dict[str, Any]:
    from blueprints.approvals.inbox import APPROVAL_TASKS_TABLE

    status = params.get("status") or None
    entities = (
        table(APPROVAL_TASKS_TABLE).query_entities(
            "Status eq @status", parameters={"status": status}
        )
        if status
        else table(APPROVAL_TASKS_TABLE).list_entities()
    )
    rows = []
    for entity in entities:
        task = json.loads(entity["Payload"])
        if task.get("role") != "approver":
            continue  # one row per level: the delegates' copies say the same
        rows.append(
            {
                "instanceId": task.get("instanceId"),
                "request": task.get("requestId"),
                "type": task.get("requestType"),
                "level": task.get("level"),
                "status": task.get("status"),
                "approver": task.get("approverEmail"),
                "deadline": task.get("deadline"),
                "decidedBy": task.get("decidedBy"),
                "amount": task.get("amount"),
            }
        )
        if len(rows) >= LIST_LIMIT:
            break
    rows.sort(key=lambda row: (str(row["instanceId"]), row["level"] or 0))
    return listing(
        [
            ("instanceId", "Chain (instance)"),
            ("request", "Request"),
            ("type", "Type"),
            ("level", "Level"),
            ("status", "Status"),
            ("approver", "Approver"),
            ("deadline", "Deadline"),
            ("decidedBy", "Decided by"),
            ("amount", "Amount"),
        ],
        rows,
        (
            "status",
            "Status",
            ["pending", "approved", "rejected", "auto_approved", "auto_rejected", "escalated"],
        ),
    )


def _batches(instances: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for item in instances:
        status = parse(BatchStatus, item.get("customStatus"))
        result = parse(BatchResult, item.get("output"))
        rows.append(
            {
                "instanceId": item["instanceId"],
                "runtimeStatus": item["runtimeStatus"],
                "stage": status.stage.value if status else "",
                "progress": f"{status.percent_complete:.0f} %" if status else "",
                "chunks": f"{status.processed_chunks}/{status.total_chunks}" if status else "",
                "failedItems": status.failed_items if status else "",
                "outcome": result.outcome.value if result else "",
                "created": item.get("createdTime"),
            }
        )
    return listing(
        [
            ("instanceId", "Job (instance)"),
            ("runtimeStatus", "Runtime status"),
            ("stage", "Stage"),
            ("progress", "Progress"),
            ("chunks", "Chunks"),
            ("failedItems", "Failed items"),
            ("outcome", "Outcome"),
            ("created", "Created"),
        ],
        rows,
    )
