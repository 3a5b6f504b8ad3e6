"""What happens when nobody answers: every timeout policy, escalation, and reminders sent once.

With the default virtual clock a 72-hour deadline passes as soon as the engine is idle; with
``virtual_time="manual"`` the test moves time on itself to land between reminder and deadline.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from approvals_helpers import (
    APPROVER_1,
    APPROVER_2,
    APPROVER_3,
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

pytestmark = pytest.mark.usefixtures("app_storage")

ESCALATIONS = "escalations@example.com"


async def test_auto_approve_on_timeout_continues_to_the_next_level(
    async_durable_host: DurableTestHost,
) -> None:
    """Level 1 times out and is approved by 'system'; level 2 auto-rejects: the chain times out."""
    client = await async_durable_host.http()
    body = chain_body(
        "t1", level(1, APPROVER_1, autoApprove=True), level(2, APPROVER_2, autoReject=True)
    )
    instance_id = await start_chain(client, body)
    final = await async_durable_host.wait(instance_id)
    output = final["output"]
    assert output["finalStatus"] == "timeout"
    assert outcomes(output) == [(1, "auto_approved", "system"), (2, "auto_rejected", "system")]
    assert output["decisions"][0]["approved"] is True
    assert output["decisions"][1]["approved"] is False
    # The deadline is 72 h after each level started, on the virtual clock.
    first, second = (d["decidedAt"] for d in output["decisions"])
    assert first < second
    assert final["customStatus"]["finalStatus"] == "timeout"


async def test_auto_reject_on_timeout_ends_with_timeout_and_skips_the_rest(
    async_durable_host: DurableTestHost,
) -> None:
    """An auto-rejecting level that times out ends the chain; later levels are never asked."""
    client = await async_durable_host.http()
    body = chain_body("t2", level(1, APPROVER_1, autoReject=True), level(2, APPROVER_2))
    instance_id = await start_chain(client, body)
    output = (await async_durable_host.wait(instance_id))["output"]
    assert output["finalStatus"] == "timeout"
    assert outcomes(output) == [(1, "auto_rejected", "system")]
    assert await notifications(client, recipient=APPROVER_2) == []
    [result] = await notifications(client, recipient=REQUESTER)
    assert "timeout" in result["subject"]


async def test_escalation_across_three_levels(async_durable_host: DurableTestHost) -> None:
    """Nobody answers at any level: each escalates to the next; the last has nowhere to go."""
    client = await async_durable_host.http()
    body = chain_body(
        "t3", level(1, APPROVER_1), level(2, APPROVER_2), level(3, APPROVER_3, hours=0.5)
    )
    instance_id = await start_chain(client, body)
    final = await async_durable_host.wait(instance_id)
    output = final["output"]
    assert output["finalStatus"] == "timeout"
    assert outcomes(output) == [(n, "escalated", "system") for n in (1, 2, 3)]
    assert all(d["approved"] is None for d in output["decisions"])
    assert final["customStatus"]["escalations"] == 3

    escalated = await notifications(client, instanceId=instance_id, category="approval_escalated")
    # Each escalation is told to the next level's approver; the last level has none.
    assert sorted(n["recipient"] for n in escalated) == sorted([APPROVER_2, APPROVER_3])
    requests = await notifications(client, instanceId=instance_id, category="approval_request")
    assert len(requests) == 3


@pytest.mark.durable_host(virtual_time="manual")
async def test_an_escalated_request_can_still_be_approved_further_up(
    async_durable_host: DurableTestHost,
) -> None:
    """Level 1 escalates (to the escalation contact too); level 2 approves: approved."""
    client = await async_durable_host.http()
    body = chain_body(
        "t4", level(1, APPROVER_1, hours=8), level(2, APPROVER_2), escalationEmail=ESCALATIONS
    )
    instance_id = await start_chain(client, body)
    await waiting_on(async_durable_host, instance_id, 1)
    async_durable_host.advance(timedelta(hours=8, seconds=1))
    custom = await waiting_on(async_durable_host, instance_id, 2)
    assert custom["escalations"] == 1
    [notice] = await notifications(client, recipient=ESCALATIONS)
    assert notice["category"] == "approval_escalated"

    assert (await decide(client, instance_id, 2, approved=True, approverEmail=APPROVER_2))[0] == 200
    output = (await async_durable_host.wait(instance_id))["output"]
    assert output["finalStatus"] == "approved"
    assert outcomes(output) == [(1, "escalated", "system"), (2, "approved", APPROVER_2)]


@pytest.mark.durable_host(virtual_time="manual")
async def test_the_reminder_goes_once_before_the_deadline(
    async_durable_host: DurableTestHost,
) -> None:
    """The reminder fires at deadline minus the lead time, once; a decision then still counts."""
    client = await async_durable_host.http()
    body = chain_body("t5", level(1, APPROVER_1, hours=48, reminderLeadHours=6))
    instance_id = await start_chain(client, body)
    await waiting_on(async_durable_host, instance_id, 1)

    async_durable_host.advance(timedelta(hours=41))
    await async_durable_host.idle()
    assert await notifications(client, category="approval_reminder") == []

    async_durable_host.advance(timedelta(hours=1, seconds=1))
    await async_durable_host.wait_for_custom_status(
        instance_id, lambda custom: custom["reminderSent"]
    )
    await async_durable_host.idle()
    async_durable_host.advance(timedelta(hours=5))
    await async_durable_host.idle()
    [reminder] = await notifications(client, category="approval_reminder")
    assert reminder["recipient"] == APPROVER_1
    assert reminder["notificationId"] == f"{instance_id}:level1:reminder"
    assert ((await async_durable_host.status(instance_id)) or {})["runtimeStatus"] == "Running"

    assert (await decide(client, instance_id, 1, approved=True, approverEmail=APPROVER_1))[0] == 200
    assert (await async_durable_host.wait(instance_id))["output"]["finalStatus"] == "approved"
    assert len(await notifications(client, category="approval_reminder")) == 1


async def test_each_level_that_times_out_is_reminded_once(
    async_durable_host: DurableTestHost,
) -> None:
    """With the default lead time (a quarter of the window) every level gets one reminder."""
    client = await async_durable_host.http()
    body = chain_body(
        "t6", level(1, APPROVER_1, autoApprove=True), level(2, APPROVER_2, autoApprove=True)
    )
    instance_id = await start_chain(client, body)
    assert (await async_durable_host.wait(instance_id))["output"]["finalStatus"] == "approved"
    reminders = await notifications(client, instanceId=instance_id, category="approval_reminder")
    assert sorted(n["recipient"] for n in reminders) == sorted([APPROVER_1, APPROVER_2])
    history = (await async_durable_host.status(instance_id, history=True)) or {}
    fired = [e for e in history["historyEvents"] if e["EventType"] == "TimerFired"]
    # Per level: the reminder, then the deadline. Nothing fires twice.
    assert len(fired) == 4
