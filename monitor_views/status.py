"""Custom status in plain words, and the events an instance takes now with their models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from models.approvals import ApprovalChainStatus, ApprovalDecisionEvent, decision_event_name
from models.batches import BatchStatus
from models.orders import OrderStatus
from models.registry import get_workflow
from monitor_views.common import BATCH, CHAIN, DOCUMENTS, ORDERS, parse, when, words


def describe_status(name: str, custom_status: Any) -> str | None:
    lowered = name.lower()
    if lowered == ORDERS and (order := parse(OrderStatus, custom_status)):
        text = words(order.stage)
        if order.stage == "processing_payment" and order.payment_attempts:
            text += f" (attempt {order.payment_attempts}"
            if order.next_attempt_at:
                text += f", next try {when(order.next_attempt_at)}"
            text += ")"
        if order.last_error:
            text += f"; last error: {order.last_error}"
        return f"{text}; total {order.total:.2f}"
    if lowered == CHAIN and (chain := parse(ApprovalChainStatus, custom_status)):
        if chain.stage == "completed":
            return f"Finished: {chain.final_status}"
        text = (
            f"Waiting for level {chain.current_level} of {chain.level_count}: "
            f"{chain.approver} until {when(chain.deadline)}"
        )
        if chain.escalations:
            text += f" ({chain.escalations} escalation(s))"
        return text
    if lowered in (BATCH, "batch_chunk_group") and (batch := parse(BatchStatus, custom_status)):
        return (
            f"{words(batch.stage.value)}: {batch.processed_chunks} of {batch.total_chunks} "
            f"chunks ({batch.percent_complete:.0f} %), {batch.failed_items} failed items"
        )
    if lowered == DOCUMENTS and isinstance(custom_status, dict):
        stage, missing = custom_status.get("stage"), custom_status.get("missingSections")
        if isinstance(stage, str):
            if isinstance(missing, list) and missing:
                return f"{stage} (missing: {', '.join(map(str, missing))})"
            return stage
    return None


def event_models(name: str, custom_status: Any) -> dict[str, type[BaseModel]]:
    if name.lower() == CHAIN:
        chain = parse(ApprovalChainStatus, custom_status)
        if chain is None or chain.stage != "awaiting_decision" or not chain.current_level:
            return {}
        return {decision_event_name(chain.request_id, chain.current_level): ApprovalDecisionEvent}
    spec = get_workflow(name)
    return dict(spec.events) if spec is not None else {}


def instance_events(name: str, instance_id: str, custom_status: Any) -> dict[str, dict[str, Any]]:
    return {
        event: model.model_json_schema(by_alias=True)
        for event, model in event_models(name, custom_status).items()
    }


def validate_event(
    name: str, instance_id: str, custom_status: Any, event_name: str, payload: Any
) -> dict[str, Any]:
    model = event_models(name, custom_status).get(event_name)
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
