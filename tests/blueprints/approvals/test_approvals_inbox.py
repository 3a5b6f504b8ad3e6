"""The approvers' inbox: a read model the chain keeps up to date, listed by GET /api/approvals."""

from __future__ import annotations

import pytest
from approvals_helpers import (
    APPROVER_1,
    APPROVER_2,
    chain_body,
    decide,
    inbox,
    level,
    start_chain,
    waiting_on,
)

from devhost.testing import DurableTestHost

pytestmark = pytest.mark.usefixtures("app_storage")

DELEGATE = "deputy@example.com"


@pytest.mark.durable_host(virtual_time="manual")
async def test_pending_tasks_follow_the_chain_for_approvers_and_delegates(
    async_durable_host: DurableTestHost,
) -> None:
    """A waiting level is in its approver's and delegate's inbox; deciding moves it on."""
    client = await async_durable_host.http()
    first = await start_chain(
        client,
        chain_body("i1", level(1, APPROVER_1, delegates=[DELEGATE]), level(2, APPROVER_2)),
    )
    second = await start_chain(client, chain_body("i2", level(1, APPROVER_1)))
    await waiting_on(async_durable_host, first, 1)
    await waiting_on(async_durable_host, second, 1)

    pending = await inbox(client, APPROVER_1.upper())
    assert sorted(task["requestId"] for task in pending) == ["i1", "i2"]
    task = next(task for task in pending if task["requestId"] == "i1")
    assert (task["role"], task["level"], task["status"]) == ("approver", 1, "pending")
    assert task["decisionUri"] == f"/api/approvals/{first}/levels/1"
    assert task["amount"] == 2500 and task["requestType"] == "expense"
    [delegated] = await inbox(client, DELEGATE)
    assert (delegated["role"], delegated["approverEmail"]) == ("delegate", APPROVER_1)
    assert await inbox(client, APPROVER_2) == []

    assert (await decide(client, first, 1, approved=True, approverEmail=DELEGATE))[0] == 200
    await waiting_on(async_durable_host, first, 2)
    assert [task["requestId"] for task in await inbox(client, APPROVER_1)] == ["i2"]
    assert await inbox(client, DELEGATE) == []
    [done] = await inbox(client, APPROVER_1, status="approved")
    assert (done["requestId"], done["decidedBy"]) == ("i1", DELEGATE)
    [next_level] = await inbox(client, APPROVER_2)
    assert (next_level["requestId"], next_level["level"]) == ("i1", 2)
    assert len(await inbox(client, APPROVER_1, status=None)) == 2


async def test_a_timed_out_level_leaves_the_inbox_with_its_outcome(
    async_durable_host: DurableTestHost,
) -> None:
    """After an escalation the row shows 'escalated', decided by 'system'."""
    client = await async_durable_host.http()
    instance_id = await start_chain(client, chain_body("i3", level(1, APPROVER_1)))
    await async_durable_host.wait(instance_id)
    assert await inbox(client, APPROVER_1) == []
    [row] = await inbox(client, APPROVER_1, status="escalated")
    assert row["decidedBy"] == "system"


@pytest.mark.durable_host(virtual_time="manual")
async def test_the_inbox_query_is_validated_and_paged(async_durable_host: DurableTestHost) -> None:
    """The approver is required; pages follow the continuation token."""
    client = await async_durable_host.http()
    response = await client.get("/api/approvals", params={"status": "pending"})
    assert response.status == 400
    assert (await response.json())["error"]["details"][0]["field"] == "approver"
    response = await client.get("/api/approvals", params={"approver": APPROVER_1, "status": "x"})
    assert response.status == 400
    response = await client.get(
        "/api/approvals", params={"approver": APPROVER_1, "continuationToken": "%%"}
    )
    assert (await response.json())["error"]["code"] == "InvalidContinuationToken"

    ids = [await start_chain(client, chain_body(f"p{n}", level(1, APPROVER_1))) for n in range(3)]
    for instance_id in ids:
        await waiting_on(async_durable_host, instance_id, 1)
    seen: list[str] = []
    params = {"approver": APPROVER_1, "status": "pending", "top": "2"}
    while True:
        body = await (await client.get("/api/approvals", params=params)).json()
        seen += [task["instanceId"] for task in body["tasks"]]
        if not body["continuationToken"]:
            break
        params["continuationToken"] = body["continuationToken"]
    assert sorted(seen) == sorted(ids)
