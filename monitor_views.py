"""What this app shows in the local host's monitor (``devhost/monitor/plugin.py`` describes it).

The monitor knows task hubs, not this app; it imports this module when it finds it next to
``function_app.py`` and calls ``plugin``'s methods with plain JSON values. From here it gets:
the forms of the events each instance accepts (from the models registered in
``models.registry``, plus the per-level decision events of approval chains), custom status in
plain words, the app's own read models (documents, orders, approval tasks) and ledgers as
views, a panel per workflow on the instance page, and the facts behind the metrics
(compensations, approval latency and outcome). Local tooling only: never imported by
``function_app.py`` and left out of the deployment package (``.funcignore``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from blueprints.app_storage import table
from models.approvals import (
    ApprovalChainInput,
    ApprovalChainResult,
    ApprovalChainStatus,
    ApprovalDecisionEvent,
    decision_event_name,
)
from models.batches import BatchResult, BatchStatus
from models.documents import DocumentInput, DocumentListQuery, DocumentResult, DocumentState
from models.orders import OrderListQuery, OrderResult, OrderStatus
from models.registry import get_workflow

_DOCUMENTS = "wip_document"
_ORDERS = "process_order"
_CHAIN = "approval_chain"
_BATCH = "batch_job"
_LIST_LIMIT = 200


def _words(text: str) -> str:
    words = text.replace("_", " ")
    return words[:1].upper() + words[1:]


def _parse(model: type[BaseModel], value: Any) -> Any:
    """``value`` as ``model``, or None when it is not one (an older or foreign payload)."""
    if value is None:
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _seconds_between(start: str | None, end: Any) -> float | None:
    try:
        begin = datetime.fromisoformat(str(start))
        finish = end if isinstance(end, datetime) else datetime.fromisoformat(str(end))
    except (TypeError, ValueError):
        return None
    if begin.tzinfo is None or finish.tzinfo is None:
        begin, finish = begin.replace(tzinfo=None), finish.replace(tzinfo=None)
    return max(0.0, (finish - begin).total_seconds())


class AppMonitorPlugin:
    """The app's side of the monitor's plug-in surface."""

    # -- plain words ---------------------------------------------------------------------------

    def describe_status(self, name: str, custom_status: Any) -> str | None:
        lowered = name.lower()
        if lowered == _ORDERS and (order := _parse(OrderStatus, custom_status)):
            text = _words(order.stage)
            if order.stage == "processing_payment" and order.payment_attempts:
                text += f" (attempt {order.payment_attempts}"
                if order.next_attempt_at:
                    text += f", next try {_when(order.next_attempt_at)}"
                text += ")"
            if order.last_error:
                text += f"; last error: {order.last_error}"
            return f"{text}; total {order.total:.2f}"
        if lowered == _CHAIN and (chain := _parse(ApprovalChainStatus, custom_status)):
            if chain.stage == "completed":
                return f"Finished: {chain.final_status}"
            text = (
                f"Waiting for level {chain.current_level} of {chain.level_count}: "
                f"{chain.approver} until {_when(chain.deadline)}"
            )
            if chain.escalations:
                text += f" ({chain.escalations} escalation(s))"
            return text
        if lowered in (_BATCH, "batch_chunk_group") and (
            batch := _parse(BatchStatus, custom_status)
        ):
            return (
                f"{_words(batch.stage.value)}: {batch.processed_chunks} of {batch.total_chunks} "
                f"chunks ({batch.percent_complete:.0f} %), {batch.failed_items} failed items"
            )
        if lowered == _DOCUMENTS and isinstance(custom_status, dict):
            stage, missing = custom_status.get("stage"), custom_status.get("missingSections")
            if isinstance(stage, str):
                if isinstance(missing, list) and missing:
                    return f"{stage} (missing: {', '.join(map(str, missing))})"
                return stage
        return None

    # -- events --------------------------------------------------------------------------------

    def _event_models(self, name: str, custom_status: Any) -> dict[str, type[BaseModel]]:
        if name.lower() == _CHAIN:
            chain = _parse(ApprovalChainStatus, custom_status)
            if chain is None or chain.stage != "awaiting_decision" or not chain.current_level:
                return {}
            return {
                decision_event_name(chain.request_id, chain.current_level): ApprovalDecisionEvent
            }
        spec = get_workflow(name)
        return dict(spec.events) if spec is not None else {}

    def instance_events(
        self, name: str, instance_id: str, custom_status: Any
    ) -> dict[str, dict[str, Any]]:
        return {
            event: model.model_json_schema(by_alias=True)
            for event, model in self._event_models(name, custom_status).items()
        }

    def validate_event(
        self, name: str, instance_id: str, custom_status: Any, event_name: str, payload: Any
    ) -> dict[str, Any]:
        model = self._event_models(name, custom_status).get(event_name)
        if model is None:
            return {
                "ok": False,
                "errors": [{"field": "name", "code": "unknown", "message": "no such event now"}],
            }
        try:
            event = model.model_validate(payload)
        except ValidationError as error:
            return {
                "ok": False,
                "errors": [
                    {
                        "field": ".".join(str(part) for part in item["loc"]) or "payload",
                        "code": item["type"],
                        "message": item["msg"],
                    }
                    for item in error.errors(include_url=False, include_input=False)
                ],
            }
        return {"ok": True, "payload": event.model_dump(mode="json", by_alias=True)}

    # -- views ---------------------------------------------------------------------------------

    def views(self) -> list[dict[str, Any]]:
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
                "orchestrators": [_BATCH],
            },
        ]

    def view(
        self, view_id: str, params: dict[str, str], instances: list[dict[str, Any]]
    ) -> dict[str, Any]:
        if view_id == "documents":
            return self._documents(params)
        if view_id == "orders":
            return self._orders(params)
        if view_id == "approvals":
            return self._approvals(params)
        return self._batches(instances)

    def _documents(self, params: dict[str, str]) -> dict[str, Any]:
        from blueprints.documents.store import list_documents

        state = params.get("state") or None
        query = DocumentListQuery.model_validate(
            {"state": state, "top": _LIST_LIMIT} if state else {"top": _LIST_LIMIT}
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
        return {
            "columns": [
                {"key": "id", "label": "Document (instance)", "link": "instance"},
                {"key": "title", "label": "Title"},
                {"key": "state", "label": "State"},
                {"key": "stage", "label": "Stage"},
                {"key": "revision", "label": "Revision"},
                {"key": "creator", "label": "Creator"},
                {"key": "updated", "label": "Updated"},
            ],
            "rows": rows,
            "filters": [
                {"name": "state", "label": "State", "options": [s.value for s in DocumentState]}
            ],
        }

    def _orders(self, params: dict[str, str]) -> dict[str, Any]:
        from blueprints.orders.read_model import list_orders

        status = params.get("status") or None
        query = OrderListQuery.model_validate(
            {"status": status, "top": _LIST_LIMIT} if status else {"top": _LIST_LIMIT}
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
        return {
            "columns": [
                {"key": "orderId", "label": "Order (instance)", "link": "instance"},
                {"key": "customer", "label": "Customer"},
                {"key": "status", "label": "Status"},
                {"key": "stage", "label": "Stage"},
                {"key": "total", "label": "Total"},
                {"key": "failure", "label": "Why it failed"},
                {"key": "attention", "label": "Needs a person"},
                {"key": "updated", "label": "Updated"},
            ],
            "rows": rows,
            "filters": [
                {
                    "name": "status",
                    "label": "Status",
                    "options": [
                        "processing",
                        "awaiting_approval",
                        "compensation_failed",
                        "completed",
                        "failed",
                        "cancelled",
                    ],
                }
            ],
        }

    def _approvals(self, params: dict[str, str]) -> dict[str, Any]:
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
            if len(rows) >= _LIST_LIMIT:
                break
        rows.sort(key=lambda row: (str(row["instanceId"]), row["level"] or 0))
        return {
            "columns": [
                {"key": "instanceId", "label": "Chain (instance)", "link": "instance"},
                {"key": "request", "label": "Request"},
                {"key": "type", "label": "Type"},
                {"key": "level", "label": "Level"},
                {"key": "status", "label": "Status"},
                {"key": "approver", "label": "Approver"},
                {"key": "deadline", "label": "Deadline"},
                {"key": "decidedBy", "label": "Decided by"},
                {"key": "amount", "label": "Amount"},
            ],
            "rows": rows,
            "filters": [
                {
                    "name": "status",
                    "label": "Status",
                    "options": [
                        "pending",
                        "approved",
                        "rejected",
                        "auto_approved",
                        "auto_rejected",
                        "escalated",
                    ],
                }
            ],
        }

    def _batches(self, instances: list[dict[str, Any]]) -> dict[str, Any]:
        rows = []
        for item in instances:
            status = _parse(BatchStatus, item.get("customStatus"))
            result = _parse(BatchResult, item.get("output"))
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
        return {
            "columns": [
                {"key": "instanceId", "label": "Job (instance)", "link": "instance"},
                {"key": "runtimeStatus", "label": "Runtime status"},
                {"key": "stage", "label": "Stage"},
                {"key": "progress", "label": "Progress"},
                {"key": "chunks", "label": "Chunks"},
                {"key": "failedItems", "label": "Failed items"},
                {"key": "outcome", "label": "Outcome"},
                {"key": "created", "label": "Created"},
            ],
            "rows": rows,
        }

    # -- the instance page's panel -------------------------------------------------------------

    def instance_panel(
        self, name: str, instance_id: str, input: Any, output: Any, custom_status: Any
    ) -> list[dict[str, Any]]:
        lowered = name.lower()
        if lowered == _DOCUMENTS:
            return self._document_panel(input, output, custom_status)
        if lowered == _ORDERS:
            return self._order_panel(instance_id, output, custom_status)
        if lowered == _CHAIN:
            return self._chain_panel(input, output, custom_status)
        if lowered == _BATCH:
            return self._batch_panel(output, custom_status)
        return []

    def _document_panel(self, input: Any, output: Any, custom_status: Any) -> list[dict[str, Any]]:
        result = _parse(DocumentResult, output)
        started = _parse(DocumentInput, input)
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
                    f"{decision.approver or '?'} at {_when(decision.decided_at)}",
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
                    "received": _when(section.received_at),
                }
                for key, section in document.sections.items()
            ],
        }
        return [
            {"title": "Document", "fields": fields},
            {"title": "Sections and feedback", "table": sections},
        ]

    def _order_panel(self, order_id: str, output: Any, custom_status: Any) -> list[dict[str, Any]]:
        from blueprints.orders.providers import PAYMENT_LEDGER, SHIPMENTS

        status = _parse(OrderStatus, custom_status)
        result = _parse(OrderResult, output)
        fields: list[list[Any]] = []
        if status:
            fields += [
                ["Stage", _words(status.stage)],
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
                    "columns": [
                        {"key": k, "label": k.capitalize()}
                        for k in ("ledger", "entry", "key", "status", "attempts", "amount")
                    ],
                    "rows": ledger,
                },
            }
        )
        if result:
            sections.append(
                {
                    "title": "Reservations",
                    "table": {
                        "columns": [
                            {"key": k, "label": k.capitalize()}
                            for k in ("sku", "quantity", "status")
                        ],
                        "rows": [r.model_dump() for r in result.inventory_reservation],
                    },
                }
            )
            sections.append(
                {
                    "title": "Compensations",
                    "table": {
                        "columns": [
                            {"key": k, "label": k.capitalize()}
                            for k in ("step", "action", "status", "attempts", "error")
                        ],
                        "rows": [c.model_dump() for c in result.compensations],
                    },
                }
            )
        return sections

    def _chain_panel(self, input: Any, output: Any, custom_status: Any) -> list[dict[str, Any]]:
        request = _parse(ApprovalChainInput, input)
        if request is None:
            return []
        status = _parse(ApprovalChainStatus, custom_status)
        result = _parse(ApprovalChainResult, output)
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
                    "deadline": _when(status.deadline) if current and status else "",
                    "decision": "; ".join(
                        f"{d.outcome} by {d.approver_email} at {_when(d.decided_at)}"
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

    def _batch_panel(self, output: Any, custom_status: Any) -> list[dict[str, Any]]:
        status = _parse(BatchStatus, custom_status)
        result = _parse(BatchResult, output)
        sections: list[dict[str, Any]] = []
        if status:
            sections.append(
                {
                    "title": "Progress",
                    "progress": status.percent_complete,
                    "fields": [
                        ["Stage", _words(status.stage.value)],
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

    # -- metrics -------------------------------------------------------------------------------

    def facts(
        self,
        name: str,
        runtime_status: str,
        input: Any,
        output: Any,
        custom_status: Any,
        created_time: str | None = None,
        completed_time: str | None = None,
    ) -> dict[str, Any]:
        lowered = name.lower()
        if lowered == _ORDERS:
            order = _parse(OrderResult, output)
            if order is None:
                return {}
            return {"compensated": bool(order.compensations), "failed": order.status == "failed"}
        if lowered in ("saga", "chain_with_compensation") and isinstance(output, dict):
            return {
                "compensated": output.get("status", output.get("outcome"))
                in ("compensated", "compensation_failed")
            }
        if lowered == _CHAIN:
            request = _parse(ApprovalChainInput, input)
            result = _parse(ApprovalChainResult, output)
            kind = f"approval_chain: {request.request_type}" if request else "approval_chain"
            if result is None:
                return {"approvals": [{"type": kind, "outcome": "pending"}]}
            return {
                "approvals": [
                    {
                        "type": kind,
                        "outcome": result.final_status,
                        "latencySeconds": _seconds_between(created_time, result.completed_at),
                    }
                ]
            }
        if lowered in ("human_approval", "purchase_order_approval"):
            if output == "Auto-approved":
                return {}  # under the threshold: nobody was asked
            if runtime_status != "Completed" or not isinstance(output, str):
                ended = runtime_status in ("Failed", "Terminated", "Canceled")
                return {"approvals": [] if ended else [{"type": lowered, "outcome": "pending"}]}
            outcome = (
                "timeout" if output.lower().startswith(("timed out", "cancelled")) else ("approved")
            )
            return {
                "approvals": [
                    {
                        "type": lowered,
                        "outcome": outcome,
                        "latencySeconds": _seconds_between(created_time, completed_time),
                    }
                ]
            }
        return {}


plugin = AppMonitorPlugin()
