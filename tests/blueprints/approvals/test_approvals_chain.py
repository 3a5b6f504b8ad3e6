"""Approval chains decided by people: decisions through the route, checked before they are raised.

The virtual clock is manual here, so no deadline passes unless a test moves time on; a chain
that completes without ``advance()`` shows its losing timers were cancelled.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from approvals_helpers import (
    APPROVER_1,
    APPROVER_2,
    REQUESTER,
    chain_body,
    decide,
    level,
    notifications,
    outcomes,
    start_chain,
    waiting_on,
)

from devhost.testing import DurableTestHost

# Run once with a connection string and once identity-based (a token, no account key).
pytestmark = [pytest.mark.usefixtures("app_storage"), pytest.mark.both_storage_paths]

DELEGATE = "deputy@example.com"


@pytest.mark.durable_host(virtual_time="manual")
async def test_two_approvals_approve_the_request(async_durable_host: DurableTestHost) -> None:
    """Each level's approver approves in turn; the requester hears the result."""
    client = await async_durable_host.http()
    body = chain_body("r1", level(1, APPROVER_1), level(2, APPROVER_2))
    instance_id = await start_chain(client, body)
    assert instance_id == "approval-r1"
    custom = await waiting_on(async_durable_host, instance_id, 1)
    assert (custom["approver"], custom["levelCount"], custom["delegates"]) == (
        APPROVER_1,
        2,
        [],
    )

    status, _ = await decide(client, instance_id, 1, approved=True, approverEmail=APPROVER_1)
    assert status == 200
    await waiting_on(async_durable_host, instance_id, 2)
    status, accepted = await decide(
        client, instance_id, 2, approved=True, approverEmail=APPROVER_2.upper(), comments="ok"
    )
    assert status == 200
    assert (accepted["outcome"], accepted["level"]) == ("accepted", 2)
    assert accepted["decision"]["approverEmail"] == APPROVER_2
    assert accepted["decision"]["requestId"] == accepted["requestId"]

    # No advance(): both levels' deadline and reminder timers were cancelled.
    final = await async_durable_host.wait(instance_id)
    output = final["output"]
    assert output["finalStatus"] == "approved"
    assert output["requestId"] == "r1"
    assert outcomes(output) == [(1, "approved", APPROVER_1), (2, "approved", APPROVER_2)]
    assert output["completedAt"]
    assert final["customStatus"]["stage"] == "completed"
    result = await notifications(client, recipient=REQUESTER)
    assert [n["category"] for n in result] == ["approval_result"]
    requests = await notifications(client, instanceId=instance_id, category="approval_request")
    assert sorted(n["recipient"] for n in requests) == sorted([APPROVER_1, APPROVER_2])
    assert requests[0]["link"].startswith(f"/api/approvals/{instance_id}/levels/")


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_rejection_ends_the_chain_and_tells_the_requester(
    async_durable_host: DurableTestHost,
) -> None:
    """A rejection with comments at level 1 stops the chain; level 2 is never asked."""
    client = await async_durable_host.http()
    body = chain_body("r2", level(1, APPROVER_1), level(2, APPROVER_2))
    instance_id = await start_chain(client, body)
    await waiting_on(async_durable_host, instance_id, 1)

    status, _ = await decide(
        client, instance_id, 1, approved=False, approverEmail=APPROVER_1, comments="Too costly"
    )
    assert status == 200
    output = (await async_durable_host.wait(instance_id))["output"]
    assert output["finalStatus"] == "rejected"
    assert outcomes(output) == [(1, "rejected", APPROVER_1)]
    assert output["decisions"][0]["comments"] == "Too costly"
    assert await notifications(client, recipient=APPROVER_2) == []
    [result] = await notifications(client, recipient=REQUESTER)
    assert "rejected" in result["subject"] and "Too costly" in result["body"]


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_rejection_without_comments_is_refused(async_durable_host: DurableTestHost) -> None:
    """400 names the comments; the level keeps waiting and takes a proper decision after."""
    client = await async_durable_host.http()
    instance_id = await start_chain(client, chain_body("r3", level(1, APPROVER_1)))
    await waiting_on(async_durable_host, instance_id, 1)

    for comments in ("", "   "):
        status, body = await decide(
            client, instance_id, 1, approved=False, approverEmail=APPROVER_1, comments=comments
        )
        assert status == 400
        assert body["error"]["code"] == "ValidationFailed"
        assert "comments" in body["error"]["details"][0]["message"]

    status, _ = await decide(
        client, instance_id, 1, approved=False, approverEmail=APPROVER_1, comments="No budget"
    )
    assert status == 200
    assert (await async_durable_host.wait(instance_id))["output"]["finalStatus"] == "rejected"


@pytest.mark.durable_host(virtual_time="manual")
async def test_the_route_refuses_what_the_chain_cannot_take(
    async_durable_host: DurableTestHost,
) -> None:
    """403 for someone else, 409 for a future, past or finished level, 404, 400 on bad input."""
    client = await async_durable_host.http()
    body = chain_body("r4", level(1, APPROVER_1), level(2, APPROVER_2))
    instance_id = await start_chain(client, body)
    await waiting_on(async_durable_host, instance_id, 1)

    status, error = await decide(client, instance_id, 1, approved=True, approverEmail=APPROVER_2)
    assert (status, error["error"]["code"]) == (403, "NotAnApprover")
    status, error = await decide(client, instance_id, 2, approved=True, approverEmail=APPROVER_2)
    assert (status, error["error"]["code"]) == (409, "LevelNotCurrent")
    assert error["error"]["details"][0]["currentLevel"] == 1
    status, error = await decide(
        client, "approval-nope", 1, approved=True, approverEmail=APPROVER_1
    )
    assert (status, error["error"]["code"]) == (404, "InstanceNotFound")
    status, error = await decide(client, instance_id, 1, approved="maybe", approverEmail="x")
    assert status == 400
    assert {d["field"] for d in error["error"]["details"]} == {"approved", "approverEmail"}
    response = await client.post(f"/api/approvals/{instance_id}/levels/first", json={})
    assert response.status == 400
    response = await client.post(f"/api/approvals/{instance_id}/levels/1", data=b"{nope")
    assert (await response.json())["error"]["code"] == "MalformedJson"

    assert (await decide(client, instance_id, 1, approved=True, approverEmail=APPROVER_1))[0] == 200
    await waiting_on(async_durable_host, instance_id, 2)
    status, error = await decide(client, instance_id, 1, approved=True, approverEmail=APPROVER_1)
    assert (status, error["error"]["code"]) == (409, "LevelAlreadyDecided")
    assert f"approved by {APPROVER_1}" in error["error"]["message"]

    assert (await decide(client, instance_id, 2, approved=True, approverEmail=APPROVER_2))[0] == 200
    await async_durable_host.wait(instance_id)
    status, error = await decide(client, instance_id, 2, approved=True, approverEmail=APPROVER_2)
    assert (status, error["error"]["code"]) == (409, "LevelAlreadyDecided")
    status, error = await decide(client, instance_id, 3, approved=True, approverEmail=APPROVER_2)
    assert (status, error["error"]["code"]) == (409, "ApprovalNotRunning")


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_delegate_decides_for_the_approver(async_durable_host: DurableTestHost) -> None:
    """A delegate's approval counts, recorded as on behalf of the approver."""
    client = await async_durable_host.http()
    body = chain_body("r5", level(1, APPROVER_1, delegates=[DELEGATE.upper()]))
    instance_id = await start_chain(client, body)
    custom = await waiting_on(async_durable_host, instance_id, 1)
    assert custom["delegates"] == [DELEGATE]

    status, _ = await decide(client, instance_id, 1, approved=True, approverEmail=DELEGATE)
    assert status == 200
    [decision] = (await async_durable_host.wait(instance_id))["output"]["decisions"]
    assert (decision["approverEmail"], decision["onBehalfOf"]) == (DELEGATE, APPROVER_1)


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_decision_raised_before_its_level_waits_is_kept_for_that_level(
    async_durable_host: DurableTestHost,
) -> None:
    """Level 2's decision, raised early through the raw event API, is used when level 2 starts."""
    client = await async_durable_host.http()
    body = chain_body("r6", level(1, APPROVER_1), level(2, APPROVER_2))
    instance_id = await start_chain(client, body)
    await waiting_on(async_durable_host, instance_id, 1)

    early = {"approved": True, "approverEmail": APPROVER_2, "comments": "pre-approved"}
    response = await client.post(
        f"/runtime/webhooks/durabletask/instances/{instance_id}/raiseEvent/approval_r6_level_2",
        json=early,
    )
    assert response.status == 202
    await async_durable_host.idle()
    # Level 1 did not take it: it is still waiting.
    assert ((await async_durable_host.status(instance_id)) or {})["customStatus"][
        "currentLevel"
    ] == 1

    assert (await decide(client, instance_id, 1, approved=True, approverEmail=APPROVER_1))[0] == 200
    output = (await async_durable_host.wait(instance_id))["output"]
    assert outcomes(output) == [(1, "approved", APPROVER_1), (2, "approved", APPROVER_2)]
    assert output["decisions"][1]["comments"] == "pre-approved"


@pytest.mark.durable_host(virtual_time="manual")
async def test_an_event_from_an_outsider_through_the_raw_api_is_ignored(
    async_durable_host: DurableTestHost,
) -> None:
    """The orchestrator re-checks the decider: an outsider's or malformed event changes nothing."""
    client = await async_durable_host.http()
    instance_id = await start_chain(client, chain_body("r7", level(1, APPROVER_1)))
    await waiting_on(async_durable_host, instance_id, 1)

    intruder = {"approved": True, "approverEmail": "mallory@example.com"}
    await async_durable_host.raise_event(instance_id, "approval_r7_level_1", intruder)
    await async_durable_host.raise_event(
        instance_id, "approval_r7_level_1", {"approved": "?"}, as_client=False
    )
    await async_durable_host.idle()
    assert ((await async_durable_host.status(instance_id)) or {})["runtimeStatus"] == "Running"

    assert (await decide(client, instance_id, 1, approved=True, approverEmail=APPROVER_1))[0] == 200
    output = (await async_durable_host.wait(instance_id))["output"]
    assert outcomes(output) == [(1, "approved", APPROVER_1)]


@pytest.mark.durable_host(virtual_time="manual")
async def test_starting_the_same_request_twice_is_a_conflict(
    async_durable_host: DurableTestHost,
) -> None:
    """The instance ID comes from the requestId; a second start while it runs answers 409."""
    client = await async_durable_host.http()
    body = chain_body("r8", level(1, APPROVER_1))
    instance_id = await start_chain(client, body)
    response = await client.post("/api/approvals", json=body)
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "ApprovalAlreadyRunning"

    view = await client.get(f"/api/approvals/{instance_id}")
    assert (await view.json())["input"]["requestId"] == "r8"
    response = await client.post("/api/approvals", json={**body, "approvalChain": []})
    assert response.status == 400


@pytest.mark.durable_host(virtual_time="manual")
async def test_two_decisions_at_once_on_one_level_each_get_an_outcome(
    async_durable_host: DurableTestHost,
) -> None:
    """Both pass the route's check; the chain applies one, the other is refused, none dropped."""
    client = await async_durable_host.http()
    body = chain_body("r9", level(1, APPROVER_1, delegates=[DELEGATE]), level(2, APPROVER_2))
    instance_id = await start_chain(client, body)
    await waiting_on(async_durable_host, instance_id, 1)

    (first, one), (second, two) = await asyncio.gather(
        decide(client, instance_id, 1, approved=True, approverEmail=APPROVER_1),
        decide(client, instance_id, 1, approved=False, approverEmail=DELEGATE, comments="no"),
    )
    assert sorted([first, second]) == [200, 409]
    accepted, refused = (one, two) if first == 200 else (two, one)
    assert accepted["outcome"] == "accepted"
    assert refused["error"]["code"] == "LevelAlreadyDecided"
    refused_id = refused["error"]["details"][0]["requestId"]

    # Both outcomes can be read back later.
    read = await client.get(accepted["outcomeUri"])
    assert (read.status, (await read.json())["outcome"]) == (200, "accepted")
    read = await client.get(refused["error"]["details"][0]["outcomeUri"])
    late = await read.json()
    assert (late["outcome"], late["code"], late["requestId"]) == (
        "refused",
        "LevelAlreadyDecided",
        refused_id,
    )
    assert late["decision"]["requestId"] == accepted["requestId"]


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_retried_decision_gets_the_same_answer(async_durable_host: DurableTestHost) -> None:
    """The Idempotency-Key names the request: posting it again answers its outcome again."""
    client = await async_durable_host.http()
    instance_id = await start_chain(client, chain_body("r10", level(1, APPROVER_1)))
    await waiting_on(async_durable_host, instance_id, 1)
    decision = {"approved": True, "approverEmail": APPROVER_1}
    headers = {"Idempotency-Key": "k-1"}
    uri = f"/api/approvals/{instance_id}/levels/1"
    first = await client.post(uri, json=decision, headers=headers)
    again = await client.post(uri, json=decision, headers=headers)
    assert (first.status, again.status) == (200, 200)
    assert (await again.json())["requestId"] == "k-1"
    other = await client.post(uri, json=decision, headers={"Idempotency-Key": "k-2"})
    assert other.status == 409


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_decision_not_taken_yet_answers_202_and_its_outcome_is_read_back(
    async_durable_host: DurableTestHost,
    monkeypatch,
) -> None:
    """With no time to wait, the route answers 202 with where to read the outcome (or 200
    when the chain was quicker than the route's one read, as on a loaded machine)."""
    monkeypatch.setenv("APPROVALS_DECISION_WAIT_SECONDS", "0")
    client = await async_durable_host.http()
    instance_id = await start_chain(client, chain_body("r11", level(1, APPROVER_1)))
    await waiting_on(async_durable_host, instance_id, 1)
    status, body = await decide(client, instance_id, 1, approved=True, approverEmail=APPROVER_1)
    assert (status, body["outcome"]) in ((202, "pending"), (200, "accepted"))
    await async_durable_host.wait(instance_id)
    read = await client.get(body["outcomeUri"])
    assert (read.status, (await read.json())["outcome"]) == (200, "accepted")


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_refused_raw_event_has_an_outcome_and_the_deadline_still_ends_the_level(
    async_durable_host: DurableTestHost,
) -> None:
    """An outsider's event is refused with its request ID; the chain then still times out."""
    client = await async_durable_host.http()
    body = chain_body("r12", level(1, APPROVER_1, hours=1, autoReject=True))
    instance_id = await start_chain(client, body)
    await waiting_on(async_durable_host, instance_id, 1)
    intruder = {"approved": True, "approverEmail": "mallory@example.com", "requestId": "m-1"}
    await async_durable_host.raise_event(instance_id, "approval_r12_level_1", intruder)
    await async_durable_host.idle()
    read = await client.get(f"/api/approvals/{instance_id}/levels/1/decisions/m-1")
    outcome = await read.json()
    assert (outcome["outcome"], outcome["code"]) == ("refused", "NotAnApprover")

    async_durable_host.advance(timedelta(hours=2))
    final = await async_durable_host.wait(instance_id)
    assert final["output"]["finalStatus"] == "timeout"


@pytest.mark.durable_host(virtual_time="manual")
async def test_an_early_refused_event_for_a_later_level_does_not_come_back(
    async_durable_host: DurableTestHost,
) -> None:
    """An outsider's event for level 2, raised during level 1, is refused once when level 2
    starts; the level then waits for the next event (SDK 1.7 would hand the same one again)."""
    client = await async_durable_host.http()
    body = chain_body("r13", level(1, APPROVER_1), level(2, APPROVER_2))
    instance_id = await start_chain(client, body)
    await waiting_on(async_durable_host, instance_id, 1)
    intruder = {"approved": True, "approverEmail": "mallory@example.com", "requestId": "m-2"}
    await async_durable_host.raise_event(instance_id, "approval_r13_level_2", intruder)
    await async_durable_host.idle()

    assert (await decide(client, instance_id, 1, approved=True, approverEmail=APPROVER_1))[0] == 200
    await waiting_on(async_durable_host, instance_id, 2)
    custom = ((await async_durable_host.status(instance_id)) or {})["customStatus"]
    assert [r["requestId"] for r in custom["refusals"]] == ["m-2"]
    status, _ = await decide(client, instance_id, 2, approved=True, approverEmail=APPROVER_2)
    assert status == 200
    final = await async_durable_host.wait(instance_id)
    assert outcomes(final["output"]) == [
        (1, "approved", APPROVER_1),
        (2, "approved", APPROVER_2),
    ]
    assert [r["requestId"] for r in final["customStatus"]["refusals"]] == ["m-2"]


@pytest.mark.durable_host(virtual_time="manual")
async def test_a_key_reused_for_another_decision_answers_422(
    async_durable_host: DurableTestHost,
) -> None:
    """The key names the decision taken: the same key with another verdict or comments is
    another request, refused 422 naming Idempotency-Key, not answered with the first's outcome."""
    client = await async_durable_host.http()
    instance_id = await start_chain(
        client, chain_body("r11", level(1, APPROVER_1), level(2, APPROVER_2))
    )
    await waiting_on(async_durable_host, instance_id, 1)
    decision = {"approved": True, "approverEmail": APPROVER_1, "comments": "fine"}
    headers = {"Idempotency-Key": "k-1"}
    uri = f"/api/approvals/{instance_id}/levels/1"
    first = await client.post(uri, json=decision, headers=headers)
    again = await client.post(uri, json=decision, headers=headers)
    assert (first.status, again.status) == (200, 200)
    assert await again.json() == await first.json()

    rejection = {**decision, "approved": False, "comments": "no budget"}
    reused = await client.post(uri, json=rejection, headers=headers)
    assert reused.status == 422
    error = (await reused.json())["error"]
    assert error["code"] == "IdempotencyKeyReused"
    assert error["details"] == [
        {
            "field": "Idempotency-Key",
            "code": "key_reused",
            "message": "differs in approved, comments",
        }
    ]
    assert "k-1" in error["message"]
    # The chain went on with the decision it took: level 2 waits.
    await waiting_on(async_durable_host, instance_id, 2)
