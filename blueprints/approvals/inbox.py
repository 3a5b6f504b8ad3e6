"""The approvers' inbox read model: table ``ApprovalTasks``, written by an activity, read by routes.

Layout: PartitionKey the assignee's email (lower-cased), RowKey ``{instanceId}:level{nn}``. A
level writes one row for its approver and one per delegate, so "what waits on me" is a single
partition query; the rows are upserted with the level's whole state, so a repeated activity
writes the same thing again.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from azure.data.tables import TableClient, UpdateMode

from blueprints.app_storage import query_page, safe_key, table
from blueprints.approvals.chain_policy import decision_uri
from models.approvals import ApprovalInboxPage, ApprovalInboxQuery, ApprovalTask, ApprovalTaskUpdate

__all__ = ["APPROVAL_TASKS_TABLE", "list_inbox", "record_task"]

APPROVAL_TASKS_TABLE = "ApprovalTasks"


def _tasks() -> TableClient:
    return table(APPROVAL_TASKS_TABLE)


def _row_key(instance_id: str, level: int) -> str:
    # Zero-padded so an inbox lists one instance's levels in order.
    return safe_key(f"{instance_id}:level{level:02d}")


def record_task(update: ApprovalTaskUpdate) -> int:
    """Write a level's state to the inbox of its approver and of each delegate.

    Parameters
    ----------
    update : ApprovalTaskUpdate
        The level's state (pending, or how it was decided).

    Returns
    -------
    int
        How many rows were written.
    """
    assignees: list[tuple[str, Literal["approver", "delegate"]]] = [
        (update.approver_email, "approver")
    ]
    assignees += [(delegate, "delegate") for delegate in update.delegates]
    for assignee, role in assignees:
        task = ApprovalTask(
            instance_id=update.instance_id,
            request_id=update.request_id,
            level=update.level,
            status=update.status,
            assignee=assignee,
            role=role,
            approver_email=update.approver_email,
            request_type=update.request_type,
            amount=update.amount,
            description=update.description,
            requester_email=update.requester_email,
            deadline=update.deadline,
            decided_by=update.decided_by,
            updated_at=update.updated_at,
            decision_uri=decision_uri(update.instance_id, update.level),
        )
        entity: dict[str, Any] = {
            "PartitionKey": safe_key(assignee.lower()),
            "RowKey": _row_key(update.instance_id, update.level),
            "Status": update.status,
            "InstanceId": update.instance_id,
            "Payload": json.dumps(task.to_wire()),
        }
        _tasks().upsert_entity(entity, mode=UpdateMode.REPLACE)
    return len(assignees)


def list_inbox(query: ApprovalInboxQuery) -> ApprovalInboxPage:
    """Return one page of an approver's inbox, optionally only the tasks in one status.

    Parameters
    ----------
    query : ApprovalInboxQuery
        The approver, status filter, page size and continuation token.

    Returns
    -------
    ApprovalInboxPage
        The tasks (by instance, then level) and the next page's token, if any.

    Raises
    ------
    ValueError
        When the continuation token is not one this API produced.
    """
    text = "PartitionKey eq @pk"
    parameters: dict[str, Any] = {"pk": safe_key(query.approver.lower())}
    if query.status:
        text += " and Status eq @status"
        parameters["status"] = query.status
    page, token = query_page(_tasks(), text, parameters, query.top, query.continuation_token)
    return ApprovalInboxPage(
        tasks=[ApprovalTask.model_validate(json.loads(entity["Payload"])) for entity in page],
        continuation_token=token,
    )
