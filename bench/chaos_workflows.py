"""The chaos run's clients: one driver per workflow, of every kind the app has.

Each driver plays a client of one workflow through the app's public routes, with its choices
(payment token, event order, decisions, delays) drawn from a seeded random source, and records
what the host acknowledged (a 2xx answer): the start, and each event. Requests ride out the
host's kills: a refused connection waits for the restart and is sent again; a request whose
answer was lost is checked (a start: does the instance exist?) or sent again (an event: the
orchestration may then see it twice, which the invariants allow; losing it they do not).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from models.approvals import decision_event_name

# Order scenarios: every token the test-mode payment provider knows, an undeliverable address
# (compensation, a refund that may fail), a manager's approval or rejection or silence, a
# cancel, and more items than the stock holds.
TOKENS = ("tok_visa", "tok_decline", "tok_transient_2", "tok_transient_9", "tok_refund_fails")
ORDER_TWISTS = ("plain", "plain", "undeliverable", "approve", "reject", "no_decision", "cancel")
SKUS = ("CHAOS-A", "CHAOS-B", "CHAOS-C")
STOCK_PER_SKU = 60
FEEDBACK_EVENTS = ("InterviewFeedback", "BackgroundCheckFeedback", "ContractFeedback")
TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})


class Lost(Exception):
    """A request was sent but its answer never came (the host died meanwhile)."""


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Stats:
    """What the clients saw, for the summary."""

    requests: int = 0
    refused: int = 0  # connection refused: the host was down
    lost: int = 0  # answer lost: the host died while handling the request
    unavailable: int = 0  # 503
    server_errors: list[str] = field(default_factory=list)  # any other 5xx: a defect


@dataclass
class Workflow:
    """One workflow driven by the run, and what the host acknowledged for it."""

    kind: str
    instance_id: str
    plan: str
    started: bool = False
    # (event name, what for, wall-clock time the host acknowledged it)
    events: list[tuple[str, str, float]] = field(default_factory=list)
    finished: bool = False
    outcome: Any = None  # the workflow's result as the API showed it at the end
    facts: dict[str, Any] = field(default_factory=dict)  # what the invariants need to know

    def acknowledged(self, name: str, why: str) -> None:
        """Record an event the host answered with 2xx."""
        self.events.append((name, why, time.time()))


class Api:
    """The app's HTTP routes on the host under test, through its restarts."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession, stats: Stats) -> None:
        self.base_url = base_url
        self.session = session
        self.stats = stats

    async def send(self, method: str, path: str, body: Any = None) -> Answer:
        """Send until the host answers something other than 503; raise ``Lost`` when the
        request may have been handled but its answer is gone."""
        server_errors = 0
        while True:
            self.stats.requests += 1
            try:
                async with self.session.request(
                    method,
                    f"{self.base_url}{path}",
                    json=body,
                    timeout=aiohttp.ClientTimeout(total=90),
                ) as response:
                    raw = await response.read()
                    status, headers = response.status, dict(response.headers)
            except aiohttp.ClientConnectorError:
                self.stats.refused += 1  # not sent: the host is down, wait for its restart
                await asyncio.sleep(0.2)
                continue
            except (aiohttp.ClientError, TimeoutError) as error:
                self.stats.lost += 1
                raise Lost(f"{method} {path}: {error!r}") from error
            payload: Any = None
            if raw:
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = raw.decode("utf-8", "replace")
            if status == 503:
                self.stats.unavailable += 1
                await asyncio.sleep(min(2.0, float(headers.get("Retry-After", "1"))))
                continue
            if status >= 500:
                self.stats.server_errors.append(f"{status} {method} {path}: {str(payload)[:300]}")
                server_errors += 1
                if server_errors < 5:
                    await asyncio.sleep(0.5)
                    continue
            return Answer(status, payload, headers)

    async def event(self, method: str, path: str, body: Any) -> Answer:
        """Send an event-like request until it is answered; resend when the answer was lost."""
        while True:
            try:
                return await self.send(method, path, body)
            except Lost:
                await asyncio.sleep(0.2)

    async def start(self, path: str, body: Any, exists_path: str) -> Answer:
        """Send a start; when its answer was lost, ask whether the instance exists before
        sending it again (a start must not run a finished workflow twice)."""
        while True:
            try:
                return await self.send("POST", path, body)
            except Lost:
                while True:
                    try:
                        found = await self.send("GET", exists_path)
                        break
                    except Lost:
                        await asyncio.sleep(0.2)
                if found.status in (200, 202):
                    return Answer(299, found.body, found.headers)  # an earlier send started it
                await asyncio.sleep(0.2)

    async def get(self, path: str) -> Answer:
        while True:
            try:
                return await self.send("GET", path)
            except Lost:
                await asyncio.sleep(0.2)


async def _poll(api: Api, path: str, done: Any, deadline: float, every: float = 0.3) -> Any:
    """GET ``path`` until ``done(answer)`` returns something truthy, or the deadline passes."""
    while time.monotonic() < deadline:
        answer = await api.get(path)
        value = done(answer)
        if value:
            return value
        await asyncio.sleep(every)
    return None


async def _start(api: Api, workflow: Workflow, path: str, body: Any, exists_path: str) -> bool:
    """Start the workflow; True once the host acknowledged it (or an earlier send had)."""
    answer = await api.start(path, body, exists_path)
    # 200: an order already running; 409: the instance exists (an earlier send started it).
    workflow.started = answer.status in (200, 202, 299, 409)
    if not workflow.started:
        workflow.facts["start_refused"] = f"{answer.status} {answer.body}"
    return workflow.started


# -- orders ----------------------------------------------------------------------------------


def order_plan(rng: random.Random, order_id: str) -> tuple[str, dict[str, Any], str]:
    token = rng.choice(TOKENS)
    twist = rng.choice(ORDER_TWISTS)
    items = [
        {
            "productId": f"p-{sku}",
            "sku": sku,
            "name": sku.title(),
            "quantity": rng.randint(1, 4),
            "unitPrice": rng.choice([2.5, 5.0, 7.25]),
        }
        for sku in rng.sample(SKUS, rng.randint(1, 2))
    ]
    needs_approval = twist in ("approve", "reject", "no_decision")
    body = {
        "orderId": order_id,
        "customerId": f"cust-{rng.randint(1, 9)}",
        "customerEmail": "chaos@example.com",
        "items": items,
        "shippingAddress": {
            "street": "1 Main St",
            "city": "Seattle",
            "state": "WA",
            "zipCode": "00000" if twist == "undeliverable" else "98101",
            "country": "US",
        },
        "paymentDetails": {"method": "credit_card", "token": token},
        "settings": {
            "approvalThreshold": 0 if needs_approval else 100000,
            "approvalTimeoutHours": 0.002,  # 7.2 s on the real clock
            "paymentRetry": {"firstDelaySeconds": 0.3, "factor": 2, "maxAttempts": 4},
            "compensationRetry": {"firstDelaySeconds": 0.3, "factor": 2, "maxAttempts": 2},
        },
    }
    return f"{token}/{twist}", body, twist


async def drive_order(api: Api, workflow: Workflow, rng: random.Random, deadline: float) -> None:
    order_id = workflow.instance_id
    plan, body, twist = order_plan(rng, order_id)
    workflow.plan = plan
    workflow.facts["items"] = body["items"]
    workflow.facts["token"] = body["paymentDetails"]["token"]
    if not await _start(api, workflow, "/api/orders", body, f"/api/orders/{order_id}"):
        return
    path = f"/api/orders/{order_id}"

    def stage(answer: Answer) -> str | None:
        return (answer.body or {}).get("stage") if answer.status == 200 else None

    def awaiting_approval_or_past_it(answer: Answer) -> bool:
        # An order can fail before it asks (no stock): then there is nothing to approve.
        return stage(answer) not in (None, "validating", "reserving_inventory")

    if twist in ("approve", "reject"):
        await _poll(api, path, awaiting_approval_or_past_it, deadline)
        await asyncio.sleep(rng.uniform(0, 2))
        decision = {"approved": twist == "approve", "approver": "manager", "comment": "chaos"}
        sent = await api.event("POST", f"{path}/approval", decision)
        # 200: the order took it; 202: raised, not taken yet; 409: refused (not raised).
        if sent.status in (200, 202):
            workflow.acknowledged("ManagerApproval", twist)
    elif twist == "cancel":
        await asyncio.sleep(rng.uniform(0, 3))
        sent = await api.event("POST", f"{path}/cancel", {"reason": "chaos"})
        if sent.status == 202:
            workflow.acknowledged("CancelOrder", "cancel")

    while time.monotonic() < deadline:
        answer = await api.get(path)
        body_now = answer.body or {}
        if answer.status == 200 and body_now.get("runtimeStatus") in TERMINAL:
            workflow.finished = True
            workflow.outcome = body_now.get("result")
            return
        if stage(answer) == "compensation_failed" and not any(
            name == "ManualResolution" for name, _, _ in workflow.events
        ):
            sent = await api.event(
                "POST", f"{path}/resolution", {"resolvedBy": "ops", "note": "chaos"}
            )
            if sent.status in (200, 202):
                workflow.acknowledged("ManualResolution", "resolution")
        await asyncio.sleep(0.3)


# -- documents -------------------------------------------------------------------------------


async def drive_document(api: Api, workflow: Workflow, rng: random.Random, deadline: float) -> None:
    document_id = workflow.instance_id
    order = rng.sample(FEEDBACK_EVENTS, len(FEEDBACK_EVENTS))
    early_submission = rng.random() < 0.3
    approved = rng.random() < 0.7
    workflow.plan = ">".join(name.removesuffix("Feedback") for name in order) + (
        "/early-submit" if early_submission else ""
    )
    body = {"id": document_id, "title": "Chaos onboarding", "creator": "hr", "applicationId": "CH"}
    if not await _start(api, workflow, "/api/documents", body, f"/api/documents/{document_id}"):
        return
    events = f"/api/instances/{document_id}/events"
    for number, name in enumerate(order):
        if early_submission and number == 1:
            sent = await api.event("POST", f"{events}/SubmissionApproval", True)
            if sent.status == 202:
                workflow.acknowledged("SubmissionApproval", "early")
        await asyncio.sleep(rng.uniform(0, 1.0))
        feedback = {"feedback": f"{name} by chaos", "isPassed": rng.random() < 0.8}
        sent = await api.event("POST", f"{events}/{name}", feedback)
        if sent.status == 202:
            workflow.acknowledged(name, "section")
    # An early approval is kept until the last section arrives (as the runtime keeps an event
    # until an orchestrator waits for it), so the document may close without a final one.
    state = await _poll(
        api,
        f"/api/documents/{document_id}/status",
        lambda a: (
            a.status == 200
            and (a.body or {}).get("state") in ("ready", "submitted", "cancelled")
            and a.body["state"]
        ),
        deadline,
    )
    if not state:
        return
    if state == "ready":
        decision = {"approved": approved, "approver": "cto", "comments": "chaos"}
        sent = await api.event("POST", f"{events}/SubmissionApproval", decision)
        if sent.status == 202:
            workflow.acknowledged("SubmissionApproval", "final")
    final = await _poll(
        api,
        f"/api/documents/{document_id}",
        lambda a: a.status == 200 and a.body.get("runtimeStatus") in TERMINAL and a.body,
        deadline,
    )
    if final:
        workflow.finished = True
        workflow.outcome = final


# -- approval chains -------------------------------------------------------------------------


async def drive_approval(api: Api, workflow: Workflow, rng: random.Random, deadline: float) -> None:
    request_id = workflow.instance_id.removeprefix("approval-")
    levels = []
    decisions: list[str] = []
    for level in range(1, rng.randint(1, 3) + 1):
        policy = rng.choice(["escalate", "autoApprove", "autoReject"])
        # 0.001 h is 3.6 s: a level left alone times out within the run.
        spec: dict[str, Any] = {
            "level": level,
            "approverEmail": f"approver{level}@example.com",
            "timeoutHours": rng.choice([0.001, 0.002, 0.003]),
            "reminderLeadHours": 0.0005,
        }
        if policy != "escalate":
            spec[policy] = True
        levels.append(spec)
        decisions.append(rng.choice(["approve", "approve", "reject", "silence"]))
    workflow.plan = ",".join(decisions)
    body = {
        "requestId": request_id,
        "requestType": "purchase",
        "requesterId": "u-chaos",
        "requesterEmail": "requester@example.com",
        "amount": 1200,
        "description": "Chaos run",
        "escalationEmail": "escalations@example.com",
        "approvalChain": levels,
    }
    path = f"/api/approvals/{workflow.instance_id}"
    if not await _start(api, workflow, "/api/approvals", body, path):
        return
    for spec, decision in zip(levels, decisions, strict=True):
        level = spec["level"]

        def current(answer: Answer, level: int = level) -> Any:
            if answer.status != 200:
                return None
            if answer.body.get("runtimeStatus") in TERMINAL:
                return "finished"
            custom = answer.body.get("customStatus") or {}
            waiting = custom.get("stage") == "awaiting_decision"
            return "waiting" if waiting and custom.get("currentLevel") == level else None

        reached = await _poll(api, path, current, deadline)
        if reached != "waiting" or decision == "silence":
            continue
        await asyncio.sleep(rng.uniform(0, 1.5))
        verdict = {
            "approved": decision == "approve",
            "approverEmail": spec["approverEmail"],
            "comments": "chaos decision",
        }
        sent = await api.event("POST", f"{path}/levels/{level}", verdict)
        # 200: applied; 202: raised, not taken yet (both acknowledged); 409: refused.
        if sent.status in (200, 202):
            workflow.acknowledged(decision_event_name(request_id, level), decision)
    final = await _poll(
        api,
        path,
        lambda a: a.status == 200 and a.body["runtimeStatus"] in TERMINAL and a.body,
        deadline,
    )
    if final:
        workflow.finished = True
        workflow.outcome = final.get("output")


# -- batches ---------------------------------------------------------------------------------


async def drive_batch(api: Api, workflow: Workflow, rng: random.Random, deadline: float) -> None:
    job_id = workflow.instance_id
    count = rng.randint(20, 60)
    items: list[Any] = [
        {
            "transactionId": f"{job_id}-{n}",
            "customerId": f"C{n % 7}",
            "email": f"c{n}@example.com",
            "amount": round(rng.uniform(1, 500), 2),
            "currency": "usd",
            "country": "us",
            "occurredAt": "2024-05-01T10:00:00Z",
        }
        for n in range(count)
    ]
    for n in rng.sample(range(count), 2):
        items[n] = {"transactionId": f"{job_id}-{n}", "amount": "not a number"}  # reported
    cancel = rng.random() < 0.2
    workflow.plan = f"{count} items" + ("/cancel" if cancel else "")
    workflow.facts["items"] = count
    body = {
        "jobId": job_id,
        "dataSource": {"items": items},
        "batchSize": 5,
        "maxParallelism": 3,
        "maxFailurePercent": 50,
    }
    path = f"/api/batches/{job_id}"
    if not await _start(api, workflow, "/api/batches", body, path):
        return
    if cancel:
        await asyncio.sleep(rng.uniform(0, 2))
        sent = await api.event("POST", f"{path}/cancel", {"reason": "chaos"})
        if sent.status == 202:
            workflow.acknowledged("cancel", "cancel")
    final = await _poll(api, path, lambda a: a.status == 200 and a.body, deadline, every=0.5)
    if final:
        workflow.finished = True
        workflow.outcome = final


DRIVERS = {
    "order": drive_order,
    "document": drive_document,
    "approval": drive_approval,
    "batch": drive_batch,
}
# How the workflows of a run are spread over the kinds.
MIX = (("order", 0.4), ("document", 0.25), ("approval", 0.2), ("batch", 0.15))


def plan_workflows(rng: random.Random, count: int, run_tag: str) -> list[Workflow]:
    """``count`` workflows, at least one of each kind, the rest drawn from ``MIX``."""
    kinds = [kind for kind, _ in MIX]
    kinds += rng.choices(kinds, weights=[weight for _, weight in MIX], k=max(0, count - 4))
    rng.shuffle(kinds)
    workflows = []
    for number, kind in enumerate(kinds[:count]):
        prefix = {"order": "o", "document": "d", "approval": "approval-a", "batch": "b"}[kind]
        workflows.append(Workflow(kind, f"{prefix}-{run_tag}-{number:03d}", plan=""))
    return workflows


async def drive(
    api: Api, workflow: Workflow, seed: int, deadline: float, start_delay: float
) -> None:
    """Run one workflow's driver with its own seeded choices."""
    rng = random.Random(f"{seed}:{workflow.instance_id}")
    await asyncio.sleep(start_delay)
    await DRIVERS[workflow.kind](api, workflow, rng, deadline)
