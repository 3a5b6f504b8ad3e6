"""Helpers shared by the approval tests: request bodies and reading the outbox and inbox."""

from __future__ import annotations

from typing import Any

from devhost.testing import DurableTestHost

APPROVER_1 = "lead@example.com"
APPROVER_2 = "director@example.com"
APPROVER_3 = "cfo@example.com"
REQUESTER = "sam@example.com"


def level(number: int, approver: str, hours: float = 72, **policy: Any) -> dict[str, Any]:
    """One level of a chain, with a timeout policy (``autoApprove=True``...) and delegates."""
    return {
        "level": number,
        "approverEmail": approver,
        "approverRole": f"role{number}",
        "timeoutHours": hours,
        **policy,
    }


def chain_body(request_id: str, *levels: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A ``POST /api/approvals`` body."""
    return {
        "requestId": request_id,
        "requestType": "expense",
        "requesterId": "u-17",
        "requesterEmail": REQUESTER,
        "amount": 2500,
        "description": "Team offsite",
        "approvalChain": list(levels),
        **extra,
    }


async def start_chain(client: Any, body: dict[str, Any]) -> str:
    """Start a chain through its route; returns the instance ID."""
    response = await client.post("/api/approvals", json=body)
    assert response.status == 202, await response.text()
    return str((await response.json())["id"])


async def waiting_on(host: DurableTestHost, instance_id: str, level_number: int) -> dict[str, Any]:
    """Wait until the chain waits for a decision on a level; returns its custom status."""
    status = await host.wait_for_custom_status(
        instance_id,
        lambda custom: (
            bool(custom)
            and custom.get("stage") == "awaiting_decision"
            and custom.get("currentLevel") == level_number
        ),
    )
    # The inbox row and the notice are written before the race starts.
    await host.idle()
    return dict(status["customStatus"])


async def decide(
    client: Any, instance_id: str, level_number: int, **decision: Any
) -> tuple[int, dict[str, Any]]:
    """POST a decision; returns the status code and body."""
    response = await client.post(
        f"/api/approvals/{instance_id}/levels/{level_number}", json=decision
    )
    return response.status, await response.json()


async def notifications(client: Any, **query: str) -> list[dict[str, Any]]:
    """The outbox, filtered (``recipient=``, ``instanceId=``, ``category=``)."""
    response = await client.get("/api/notifications", params={**query, "top": "500"})
    assert response.status == 200
    return list((await response.json())["notifications"])


async def inbox(client: Any, approver: str, status: str | None = "pending") -> list[dict[str, Any]]:
    """An approver's inbox as ``GET /api/approvals`` lists it."""
    params = {"approver": approver, **({"status": status} if status else {})}
    response = await client.get("/api/approvals", params=params)
    assert response.status == 200, await response.text()
    return list((await response.json())["tasks"])


def outcomes(output: dict[str, Any]) -> list[tuple[int, str, str]]:
    """``(level, outcome, approverEmail)`` for each decision of a chain's result."""
    return [(d["level"], d["outcome"], d["approverEmail"]) for d in output["decisions"]]
