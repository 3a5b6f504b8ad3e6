"""What must hold after a chaos run, checked from storage: the task hub's tables (read through
``AzureStore``, which decodes the DurableTask.AzureStorage layout) and the app's own ledgers.

Each check returns the list of what broke it (empty: it held).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from chaos_workflows import SKUS, STOCK_PER_SKU, Workflow

from blueprints.app_storage import safe_key, table
from blueprints.batches import store as batch_store
from blueprints.orders.providers import PAYMENT_LEDGER, SHIPMENTS
from devhost.engine.history import EventType, parse_time
from devhost.store.azure import AzureStore
from devhost.store.base import (
    RUNTIME_STATUS_NAMES,
    TERMINAL_STATUSES,
    InstanceQuery,
    InstanceRow,
    StoredHistory,
)
from models.documents import SECTION_EVENTS

# The host's history timestamps and the client's clock are the same machine's wall clock; this
# covers the rounding between them.
ACK_CLOCK_SLACK = 0.01

INVARIANTS = (
    "every acknowledged start exists and ends",
    "no acknowledged event lost",
    "one ExecutionStarted per execution",
    "every row agrees with its history",
    "order ledgers balance, stock conserved",
    "every batch item counted once",
)


class Storage:
    """The task hub's rows and histories, read once."""

    def __init__(self, store: AzureStore) -> None:
        self.store = store
        self.rows: dict[str, InstanceRow] = {}
        self.histories: dict[str, StoredHistory | None] = {}
        # Events acknowledged as their instance ended (dropped, as on Azure): not losses.
        self.raced: list[str] = []

    async def load(self) -> None:
        token: str | None = None
        while True:
            rows, token = await self.store.query_instances(InstanceQuery(), 500, token)
            self.rows.update((row.instance_id, row) for row in rows)
            if not token:
                break
        for instance_id in self.rows:
            if not instance_id.startswith("@"):
                self.histories[instance_id] = await self.store.read_history(instance_id)

    def ended_at(self, instance_id: str) -> float | None:
        """When the current execution ended (its ``ExecutionCompleted``), as a POSIX time."""
        history = self.histories.get(instance_id)
        for event in history.events if history is not None else []:
            if event["EventType"] == EventType.ExecutionCompleted:
                return parse_time(event["Timestamp"]).timestamp()
        return None

    def raised(self, instance_id: str) -> list[str]:
        history = self.histories.get(instance_id)
        events = history.events if history is not None else []
        return [e.get("Name", "") for e in events if e["EventType"] == EventType.EventRaised]


def _json(text: str | None) -> Any:
    """The JSON value of a stored text; a text that is not JSON (a failure's message) as is."""
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return text
    while isinstance(value, str):  # inputs and states may be JSON encoded more than once
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


def acknowledged_starts(storage: Storage, workflows: list[Workflow]) -> list[str]:
    broken = []
    for workflow in workflows:
        if not workflow.started:
            continue
        row = storage.rows.get(workflow.instance_id)
        if row is None:
            broken.append(f"{workflow.instance_id}: acknowledged, not in storage")
        elif row.runtime_status not in TERMINAL_STATUSES:
            broken.append(f"{workflow.instance_id}: still {row.runtime_status} ({workflow.plan})")
        elif not workflow.finished:
            broken.append(f"{workflow.instance_id}: its client never saw it end")
    return broken


def _document_audit(storage: Storage, instance_id: str) -> list[dict[str, Any]]:
    row = storage.rows.get(instance_id)
    output = _json(row.output) if row is not None else None
    document = output.get("document") if isinstance(output, dict) else None
    return list(document.get("audit") or []) if isinstance(document, dict) else []


def acknowledged_events(storage: Storage, workflows: list[Workflow]) -> list[str]:
    broken = []
    for workflow in workflows:
        if workflow.kind == "document":
            # One generation per event (continue-as-new): the audit trail is the record.
            audit = _document_audit(storage, workflow.instance_id)
            sections = Counter(
                field
                for entry in audit
                if entry.get("action") == "section"
                for field in entry.get("fields") or []
            )
            actions = Counter(entry.get("action") for entry in audit)
            for name, why, _ in workflow.events:
                if name in SECTION_EVENTS:
                    if not sections[f"sections.{SECTION_EVENTS[name]}"]:
                        broken.append(f"{workflow.instance_id}: {name} not applied")
                elif why == "final" and not actions["submitted"]:
                    broken.append(f"{workflow.instance_id}: final SubmissionApproval not applied")
                elif why == "early" and not (actions["refused"] or actions["submitted"]):
                    broken.append(f"{workflow.instance_id}: early SubmissionApproval not seen")
            continue
        raised = {name.lower() for name in storage.raised(workflow.instance_id)}
        ended = storage.ended_at(workflow.instance_id)
        for name, _, acknowledged_at in workflow.events:
            if name.lower() in raised:
                continue
            if ended is not None and ended <= acknowledged_at + ACK_CLOCK_SLACK:
                # The instance ended while the event was being stored (the route had found it
                # running): the host drops messages for a finished instance, as Azure does.
                storage.raced.append(f"{workflow.instance_id}: {name}")
                continue
            broken.append(f"{workflow.instance_id}: acknowledged {name} not in its history")
    return broken


def one_start_per_execution(storage: Storage) -> list[str]:
    broken = []
    for instance_id, history in storage.histories.items():
        if history is None:
            continue
        starts = sum(e["EventType"] == EventType.ExecutionStarted for e in history.events)
        if starts != 1:
            broken.append(f"{instance_id}: {starts} ExecutionStarted in execution")
    return broken


def rows_agree_with_histories(storage: Storage) -> list[str]:
    broken = []
    for instance_id, history in storage.histories.items():
        row = storage.rows[instance_id]
        if history is None:
            broken.append(f"{instance_id}: a {row.runtime_status} row without history")
            continue
        if history.execution_id != row.execution_id:
            broken.append(f"{instance_id}: row execution differs from its history's")
            continue
        ends = [e for e in history.events if e["EventType"] == EventType.ExecutionCompleted]
        if not ends:
            if row.runtime_status in TERMINAL_STATUSES:
                broken.append(f"{instance_id}: row {row.runtime_status}, history not ended")
            continue
        ended_as = RUNTIME_STATUS_NAMES[ends[-1]["OrchestrationStatus"]]
        if row.runtime_status != ended_as:
            broken.append(f"{instance_id}: row {row.runtime_status}, history {ended_as}")
        elif _json(row.output) != _json(ends[-1].get("Result")):
            broken.append(f"{instance_id}: row output differs from the history's result")
    return broken


def _cents(items: list[dict[str, Any]]) -> int:
    return round(sum(item["quantity"] * item["unitPrice"] for item in items) * 100)


def ledgers_balance(storage: Storage, workflows: list[Workflow]) -> list[str]:
    broken: list[str] = []
    orders = {w.instance_id: w for w in workflows if w.kind == "order" and w.started}
    ledger = list(table(PAYMENT_LEDGER).list_entities())
    rows = {(r["PartitionKey"], r["RowKey"]): r for r in ledger}
    keys = {safe_key(order_id): order_id for order_id in orders}
    charged = {
        keys.get(pk, pk)
        for (pk, rk), r in rows.items()
        if rk == "charge" and r["Status"] == "succeeded"
    }
    refunded = {
        keys.get(pk, pk)
        for (pk, rk), r in rows.items()
        if rk == "refund" and r["Status"] == "succeeded"
    }
    shipped = {
        keys.get(r["PartitionKey"], r["PartitionKey"])
        for r in table(SHIPMENTS).list_entities()
        if r["RowKey"] == "shipment"
    }
    # A failed orchestration's result is its error text, not an order result.
    outcome = {
        order_id: w.outcome if isinstance(w.outcome, dict) else {} for order_id, w in orders.items()
    }
    completed = {
        order_id for order_id, result in outcome.items() if result.get("status") == "completed"
    }
    # A refund the provider refused, resolved by a person (ManualResolution): charged, kept.
    resolved = {
        order_id
        for order_id, result in outcome.items()
        if result.get("manualResolution")
        and any(c.get("step") == "charge" for c in result.get("compensations") or [])
    }
    if shipped != completed:
        broken.append(
            f"shipped but not completed: {sorted(shipped - completed)}; "
            f"completed but not shipped: {sorted(completed - shipped)}"
        )
    if shipped & refunded:
        broken.append(f"shipped and refunded: {sorted(shipped & refunded)}")
    unaccounted = charged - shipped - refunded - resolved
    if unaccounted:
        broken.append(f"charged, neither shipped nor refunded: {sorted(unaccounted)}")
    for order_id in charged:
        workflow = orders.get(order_id)
        amount = rows[(safe_key(order_id), "charge")]["AmountCents"]
        if workflow is None:
            broken.append(f"{order_id}: charged, never acknowledged")
        elif amount != _cents(workflow.facts["items"]):
            broken.append(
                f"{order_id}: charged {amount} cents for {_cents(workflow.facts['items'])}"
            )
        refund = rows.get((safe_key(order_id), "refund"))
        if (
            refund is not None
            and refund["Status"] == "succeeded"
            and refund["AmountCents"] != amount
        ):
            broken.append(f"{order_id}: refunded {refund['AmountCents']} of {amount} cents")
    broken.extend(_stock_conserved(storage, orders, completed))
    return broken


def _stock_conserved(
    storage: Storage, orders: dict[str, Workflow], completed: set[str]
) -> list[str]:
    broken = []
    for sku in SKUS:
        row = storage.rows.get(f"@inventory@{sku}")
        scheduler = _json(row.input) if row is not None else None
        state = _json(scheduler.get("state")) if isinstance(scheduler, dict) else None
        state = state if isinstance(state, dict) else {}
        committed = sum(
            item["quantity"]
            for order_id in completed
            for item in orders[order_id].facts["items"]
            if item["sku"] == sku
        )
        available, reserved = state.get("available", 0), state.get("reserved", 0)
        if state.get("reservations") or reserved:
            broken.append(f"{sku}: still reserved at the end: {state.get('reservations')}")
        if available + reserved + committed != STOCK_PER_SKU:
            broken.append(
                f"{sku}: {available} available + {reserved} reserved + {committed} shipped "
                f"!= {STOCK_PER_SKU} stocked"
            )
    return broken


def batch_items_once(workflows: list[Workflow]) -> list[str]:
    broken = []
    for workflow in workflows:
        if workflow.kind != "batch" or not workflow.started:
            continue
        if not isinstance(workflow.outcome, dict):
            continue  # it never ended: the first invariant says so
        job_id, count = workflow.instance_id, workflow.facts["items"]
        summary = workflow.outcome.get("summary") or {}
        seen: Counter[int] = Counter()
        for chunk in range(math.ceil(count / 5)):
            text = batch_store.read_text(batch_store.output_blob(job_id, chunk)) or ""
            seen.update(json.loads(line)["index"] for line in text.splitlines() if line.strip())
        twice = sorted(index for index, times in seen.items() if times > 1)
        if twice:
            broken.append(f"{job_id}: items {twice} counted more than once")
        if summary.get("totalProcessed") != len(seen):
            broken.append(
                f"{job_id}: summary says {summary.get('totalProcessed')} processed, "
                f"outputs hold {len(seen)}"
            )
        if summary.get("outcome") != "cancelled" and set(seen) != set(range(count)):
            broken.append(f"{job_id}: {count - len(seen)} of {count} items never processed")
    return broken


async def check(
    store: AzureStore, workflows: list[Workflow]
) -> tuple[dict[str, list[str]], list[str]]:
    """Every invariant, by name, with what broke it; and the events that reached their
    instance as it ended (dropped, which is no loss)."""
    storage = Storage(store)
    await storage.load()
    checks: list[Callable[[], list[str]]] = [
        lambda: acknowledged_starts(storage, workflows),
        lambda: acknowledged_events(storage, workflows),
        lambda: one_start_per_execution(storage),
        lambda: rows_agree_with_histories(storage),
        lambda: ledgers_balance(storage, workflows),
        lambda: batch_items_once(workflows),
    ]
    results: dict[str, list[str]] = {}
    for name, run in zip(INVARIANTS, checks, strict=True):
        try:
            results[name] = run()
        except Exception as error:  # a check that cannot decide has not seen it hold
            results[name] = [f"the check failed: {error!r}"]
    return results, storage.raced
