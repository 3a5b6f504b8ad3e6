"""The facts behind the metrics: compensations, business failures, approval latency and outcome."""

from __future__ import annotations

from typing import Any

from models.approvals import ApprovalChainInput, ApprovalChainResult
from models.orders import OrderResult
from monitor_views.common import CHAIN, ORDERS, parse, seconds_between


def facts(
    name: str,
    runtime_status: str,
    input: Any,
    output: Any,
    custom_status: Any,
    created_time: str | None = None,
    completed_time: str | None = None,
) -> dict[str, Any]:
    lowered = name.lower()
    if lowered == ORDERS:
        order = parse(OrderResult, output)
        if order is None:
            return {}
        return {"compensated": bool(order.compensations), "failed": order.status == "failed"}
    if lowered in ("saga", "chain_with_compensation") and isinstance(output, dict):
        return {
            "compensated": output.get("status", output.get("outcome"))
            in ("compensated", "compensation_failed")
        }
    if lowered == CHAIN:
        request = parse(ApprovalChainInput, input)
        result = parse(ApprovalChainResult, output)
        kind = f"approval_chain: {request.request_type}" if request else "approval_chain"
        if result is None:
            return {"approvals": [{"type": kind, "outcome": "pending"}]}
        return {
            "approvals": [
                {
                    "type": kind,
                    "outcome": result.final_status,
                    "latencySeconds": seconds_between(created_time, result.completed_at),
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
                    "latencySeconds": seconds_between(created_time, completed_time),
                }
            ]
        }
    return {}
