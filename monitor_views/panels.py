"""The instance page's panel per workflow: documents, orders (with ledgers), chains, batches."""

from __future__ import annotations

from typing import Any

from blueprints.app_storage import table
from models.approvals import ApprovalChainInput, ApprovalChainResult, ApprovalChainStatus
from models.batches import BatchResult, BatchStatus
from models.documents import DocumentInput, DocumentResult
from models.orders import OrderResult, OrderStatus
from monitor_views.common import BATCH, CHAIN, DOCUMENTS, ORDERS, columns, parse, when, words


def instance_panel(
    name: str, instance_id: str, input: Any, output: Any, custom_status: Any
) -> list[dict[str, Any]]:
    lowered = name.lower()
    if lowered == DOCUMENTS:
        return _document_panel(input, output, custom_status)
    if lowered == ORDERS:
        return _order_panel(instance_id, output, custom_status)
    if lowered == CHAIN:
        return _chain_panel(input, output, custom_status)
    if lowered == BATCH:
        return _batch_panel(output, custom_status)
    return []


def _document_panel(input: Any, output: Any, custom_status: Any) -> list[dict[str, Any]]:
    result = parse(DocumentResult, output)
    started = parse(DocumentInput, input)
    document = result.document if result else started.document if started else None
    if document is None:
        return []
    missing = custom_status.get("missingSections") if isinstance(custom_status, dict) else None
    fields = [
        ["State", document.state.value],
        ["Stage", document.stage],
        ["Revision", document.revision],
        ["Title", document.title],
        ["Creator", document.creator],
        ["Missing sections", ", ".join(missing) if missing else "—"],
    ]
    if document.decision:
        decision = document.decision
        fields.append(
            [
                "Decision",
                f"{'approved' if decision.approved else 'rejected'} by "
                f"{decision.approver or '?'} at {when(decision.decided_at)}",
            ]
        )
    if document.cancel_reason:
        fields.append(["Cancelled because", document.cancel_reason])
    sections = {
        "columns": [
            {"key": "section", "label": "Section"},
            {"key": "passed", "label": "Passed"},
            {"key": "feedback", "label": "Feedback"},
            {"key": "author", "label": "Author"},
            {"key": "via", "label": "Via"},
            {"key": "received", "label": "Received"},
        ],
        "rows": [
            {
                "section": key,
                "passed": "yes" if section.is_passed else "no",
                "feedback": section.feedback,
                "author": section.author,
                "via": section.via,
                "received": when(section.received_at),
            }
            for key, section in document.sections.items()
        ],
    }
    return [
        {"title": "Document", "fields": fields},
        {"title": "Sections and feedback", "table": sections},
    ]


def _order_panel(order_id: str, output: Any, custom_status: Any) -> list[dict[str, Any]]:
    from blueprints.orders.providers import PAYMENT_LEDGER, SHIPMENTS

    status = parse(OrderStatus, custom_status)
    result = parse(OrderResult, output)
    fields: list[list[Any]] = []
    if status:
        fields += [
            ["Stage", words(status.stage)],
            ["Total", status.total],
            ["Payment attempts", status.payment_attempts],
        ]
        if status.last_error:
            fields.append(["Last error", status.last_error])
    if result:
        fields += [["Outcome", result.status], ["Why it failed", result.failure_reason or "—"]]
    sections: list[dict[str, Any]] = [{"title": "Order", "fields": fields}]
    ledger = []
    for table_name in (PAYMENT_LEDGER, SHIPMENTS):
        for entity in table(table_name).query_entities(
            "PartitionKey eq @order", parameters={"order": order_id}
        ):
            ledger.append(
                {
                    "ledger": table_name,
                    "entry": entity["RowKey"],
                    "key": entity.get("IdempotencyKey"),
                    "status": entity.get("Status"),
                    "attempts": entity.get("Attempts"),
                    "amount": (entity.get("AmountCents") or 0) / 100
                    if "AmountCents" in entity
                    else None,
                }
            )
    sections.append(
        {
            "title": "Ledger entries",
            "table": {
                "columns": columns(
                    *(
                        (k, k.capitalize())
                        for k in ("ledger", "entry", "key", "status", "attempts", "amount")
                    )
                ),
                "rows": ledger,
            },
        }
    )
    if result:
        sections.append(
            {
                "title": "Reservations",
                "table": {
                    "columns": columns(
                        *((k, k.capitalize()) for k in ("sku", "quantity", "status"))
                    ),
                    "rows": [r.model_dump() for r in result.inventory_reservation],
                },
            }
        )
        sections.append(
            {
                "title": "Compensations",
                "table": {
                    "columns": columns(
                        *(
                            (k, k.capitalize())
                            for k in ("step", "action", "status", "attempts", "error")
                        )
                    ),
                    "rows": [c.model_dump() for c in result.compensations],
                },
            }
        )
    return sections


def _chain_panel(input: Any, output: Any, custom_status: Any) -> list[dict[str, Any]]:
    request = parse(ApprovalChainInput, input)
    if request is None:
        return []
    status = parse(ApprovalChainStatus, custom_status)
    result = parse(ApprovalChainResult, output)
    decisions: dict[int, list[Any]] = {}
    for decision in result.decisions if result else []:
        decisions.setdefault(decision.level, []).append(decision)
    rows = []
    for level in request.approval_chain:
        made = decisions.get(level.level, [])
        current = status is not None and status.current_level == level.level
        rows.append(
            {
                "level": level.level,
                "approver": level.approver_email,
                "role": level.approver_role,
                "window": f"{level.timeout_hours:g} h",
                "onTimeout": "approve"
                if level.auto_approve
                else "reject"
                if level.auto_reject
                else "escalate",
                "deadline": when(status.deadline) if current and status else "",
                "decision": "; ".join(
                    f"{d.outcome} by {d.approver_email} at {when(d.decided_at)}"
                    + (f" ({d.comments})" if d.comments else "")
                    for d in made
                )
                or ("waiting" if current else ""),
            }
        )
    fields = [
        ["Request", request.request_id],
        ["Type", request.request_type],
        ["Amount", request.amount],
        ["Requester", request.requester_email],
    ]
    if result:
        fields.append(["Final status", result.final_status])
    return [
        {"title": "Approval request", "fields": fields},
        {
            "title": "Levels, deadlines and decisions",
            "table": {
                "columns": [
                    {"key": k, "label": label}
                    for k, label in (
                        ("level", "Level"),
                        ("approver", "Approver"),
                        ("role", "Role"),
                        ("window", "Window"),
                        ("onTimeout", "On timeout"),
                        ("deadline", "Deadline"),
                        ("decision", "Decision"),
                    )
                ],
                "rows": rows,
            },
        },
    ]


def _batch_panel(output: Any, custom_status: Any) -> list[dict[str, Any]]:
    status = parse(BatchStatus, custom_status)
    result = parse(BatchResult, output)
    sections: list[dict[str, Any]] = []
    if status:
        sections.append(
            {
                "title": "Progress",
                "progress": status.percent_complete,
                "fields": [
                    ["Stage", words(status.stage.value)],
                    ["Chunks", f"{status.processed_chunks} of {status.total_chunks}"],
                    ["Failed items", status.failed_items],
                ],
            }
        )
    if result:
        sections.append(
            {
                "title": "Result",
                "fields": [
                    ["Outcome", result.outcome.value],
                    [
                        "Items",
                        f"{result.total_success} ok, {result.total_failed} failed "
                        f"of {result.total_items}",
                    ],
                    ["Duration", f"{result.duration_seconds:.1f} s"],
                    ["Error", result.error or "—"],
                ],
            }
        )
    return sections
