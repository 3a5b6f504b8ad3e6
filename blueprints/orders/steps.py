"""The forward steps of ``process_order``, as generators the orchestrator runs with ``yield from``.

Each step returns a :class:`Stop` when the order cannot go on (a business failure or a
cancellation) and records what it completed in :class:`OrderRun`, including the saga step that
undoes it, so the failure path can hand exactly the completed steps to the ``saga``.

Cancellation: the orchestrator listens for ``CancelOrder`` from its first episode (the wait is
yielded with the first step, so the SDK registers it at once). Between steps a step checks
whether that task has completed; long waits (approval, payment backoff) race it.

Reservations carry a limit (``reservationHoldHours`` beyond the approval wait) so that an order
that is stuck or failed without releasing them does not hold the stock for ever; the order
renews them right before it charges, and fails (refunding nothing, releasing what it still
holds) if one lapsed and its stock is gone.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from blueprints import key_reuse
from blueprints.orders.rules import quantities_by_sku, reservation_id
from blueprints.saga.actions import INVENTORY_RESERVATION, PAYMENT
from blueprints.saga.retry import Attempted, retry_with_backoff
from models.common import failure_reason, parse_event
from models.inventory import INVENTORY_ENTITY, InventoryOutcome, ReservationRequest
from models.orders import (
    CancelOrderEvent,
    ChargePaymentInput,
    CreateShipmentInput,
    ManagerApprovalEvent,
    OrderDecisionRecord,
    OrderInput,
    OrderStatus,
    PaymentResult,
    RefundPaymentInput,
    ReservationRecord,
    ShipmentResult,
    Stage,
)
from models.saga import SagaStep

__all__ = ["APPROVAL_EVENT", "CANCEL_EVENT", "OrderRun", "Stop", "renew_reservations"]

CANCEL_EVENT = "CancelOrder"
APPROVAL_EVENT = "ManagerApproval"
# Faults (an activity raising, e.g. storage unreachable) are retried at a fixed interval; the
# business outcomes come back as envelopes and are handled by the steps themselves.
FAULT_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=3)


@dataclass
class Stop:
    """Why the order stops: ``failed`` (with the reason) or ``cancelled``."""

    outcome: str
    reason: str


@dataclass
class OrderRun:
    """What an order has done so far (rebuilt identically on every replay)."""

    order: OrderInput
    total: float
    cancel: Any
    reservations: list[ReservationRecord] = field(default_factory=list)
    payment: PaymentResult | None = None
    shipment: ShipmentResult | None = None
    approval: ManagerApprovalEvent | None = None
    undo: list[SagaStep] = field(default_factory=list)
    holds_expire: bool = False  # orders started before reservations had limits keep none
    # The approval and resolution taken, kept in every status so a route reads their outcome.
    decisions: dict[str, OrderDecisionRecord] = field(default_factory=dict)

    def show(self, context: df.DurableOrchestrationContext, stage: Stage, **extra: Any) -> None:
        """Publish the stage as the custom status."""
        status = OrderStatus(
            stage=stage,
            order_id=self.order.order_id,
            total=self.total,
            approval=self.decisions.get("approval"),
            resolution=self.decisions.get("resolution"),
            **extra,
        )
        context.set_custom_status(status.to_wire())

    def cancelled(self) -> Stop | None:
        """Return a cancellation Stop when ``CancelOrder`` has arrived."""
        if not self.cancel.is_completed:
            return None
        return Stop("cancelled", parse_event(CancelOrderEvent, self.cancel.result).reason)


def _hold_until(
    context: df.DurableOrchestrationContext, run: OrderRun, with_approval: bool
) -> datetime | None:
    if not run.holds_expire:
        return None
    settings = run.order.settings
    hours = settings.reservation_hold_hours
    if with_approval and run.total >= settings.approval_threshold:
        hours += settings.approval_timeout_hours
    return context.current_utc_datetime + timedelta(hours=hours)


def reserve_inventory(
    context: df.DurableOrchestrationContext, run: OrderRun
) -> Generator[Any, Any, Stop | None]:
    """Reserve every SKU in its ``inventory`` entity, one SKU after another."""
    run.show(context, "reserving_inventory")
    expires_at = _hold_until(context, run, with_approval=True)
    for sku, quantity in quantities_by_sku(run.order):
        if stop := run.cancelled():
            return stop
        rid = reservation_id(run.order.order_id, sku)
        request = ReservationRequest(reservation_id=rid, quantity=quantity, expires_at=expires_at)
        answer = yield context.call_entity(
            df.EntityId(INVENTORY_ENTITY, sku), "reserve", request.to_wire()
        )
        outcome = InventoryOutcome.model_validate(answer)
        if not outcome.ok:
            return Stop("failed", f"{outcome.error_code}: {outcome.detail}")
        run.reservations.append(
            ReservationRecord(sku=sku, reservation_id=rid, quantity=quantity, expires_at=expires_at)
        )
        run.undo.append(
            SagaStep(
                name=f"reserve:{sku}",
                action=INVENTORY_RESERVATION,
                key=sku,
                completed=True,
                output=answer,
                compensation_input={"reservationId": rid},
            )
        )
    return None


def await_approval(
    context: df.DurableOrchestrationContext, run: OrderRun
) -> Generator[Any, Any, Stop | None]:
    """For a large order, wait for ``ManagerApproval``, racing the deadline and a cancel."""
    settings = run.order.settings
    if run.total < settings.approval_threshold:
        return None
    if stop := run.cancelled():
        return stop
    run.show(context, "awaiting_approval")
    deadline = context.current_utc_datetime + timedelta(hours=settings.approval_timeout_hours)
    timer = context.create_timer(deadline)
    approval = context.wait_for_external_event(APPROVAL_EVENT)
    winner = yield context.task_any([approval, timer, run.cancel])
    if winner is not timer:
        timer.cancel()
    if winner is run.cancel:
        return run.cancelled()
    if winner is timer:
        hours = settings.approval_timeout_hours
        return Stop("cancelled", f"no manager decision within {hours:g} h")
    run.approval = parse_event(ManagerApprovalEvent, approval.result)
    run.decisions["approval"] = OrderDecisionRecord(
        by=run.approval.approver,
        approved=run.approval.approved,
        request_id=run.approval.request_id,
        decided_at=context.current_utc_datetime,
        text_fingerprint=key_reuse.digest(run.approval.comment),
    )
    # Shown at once: a second decision posted meanwhile reads that this one was taken.
    run.show(context, "awaiting_approval")
    if not run.approval.approved:
        comment = f": {run.approval.comment}" if run.approval.comment else ""
        return Stop("failed", f"rejected by {run.approval.approver}{comment}")
    return None


def renew_reservations(
    context: df.DurableOrchestrationContext, run: OrderRun
) -> Generator[Any, Any, Stop | None]:
    """Renew every reservation's limit before money moves; fail if one lapsed and its stock is
    gone (the entity takes it again when it is still there)."""
    expires_at = _hold_until(context, run, with_approval=False)
    if expires_at is None:
        return None
    if stop := run.cancelled():
        return stop
    for record in run.reservations:
        request = ReservationRequest(
            reservation_id=record.reservation_id, quantity=record.quantity, expires_at=expires_at
        )
        answer = yield context.call_entity(
            df.EntityId(INVENTORY_ENTITY, record.sku), "reserve", request.to_wire()
        )
        outcome = InventoryOutcome.model_validate(answer)
        if not outcome.ok:
            record.status = "expired"
            return Stop(
                "failed",
                f"the reservation of '{record.sku}' lapsed and the stock is gone: {outcome.detail}",
            )
        record.expires_at = expires_at
    return None


def _refund_step(run: OrderRun) -> SagaStep:
    refund = RefundPaymentInput(order_id=run.order.order_id, reason="order not completed")
    return SagaStep(
        name="charge",
        action=PAYMENT,
        completed=True,
        compensation_input=refund.to_wire(),
    )


def charge_payment(
    context: df.DurableOrchestrationContext, run: OrderRun
) -> Generator[Any, Any, Stop | None]:
    """Charge the total, retrying ``transient`` answers with exponential backoff on timers."""
    if stop := run.cancelled():
        return stop
    order = run.order

    def attempt(number: int) -> Any:
        run.show(context, "processing_payment", payment_attempts=number)
        request = ChargePaymentInput(
            order_id=order.order_id,
            customer_id=order.customer_id,
            amount=run.total,
            currency=order.settings.currency,
            method=order.payment_details.method,
            token=order.payment_details.token,
            attempt=number,
        )
        return context.call_activity("charge_payment", request.to_wire())

    outcome: Attempted = yield from retry_with_backoff(
        context,
        attempt,
        order.settings.payment_retry,
        should_retry=lambda output: output.get("errorCode") == "transient",
        interrupt=run.cancel,
    )
    if outcome.output is None:
        # The last attempt raised: whether it charged is unknown, so undo it to be safe (the
        # refund is a no-op when the ledger holds no charge).
        run.undo.append(_refund_step(run))
    if outcome.ok:
        run.payment = PaymentResult.model_validate(outcome.output)
        run.undo.append(_refund_step(run))
        return None
    if outcome.interrupted:
        return run.cancelled()
    if outcome.output is not None and outcome.output.get("errorCode") == "declined":
        run.payment = PaymentResult.model_validate(outcome.output)
        return Stop("failed", f"payment declined: {run.payment.detail}")
    run.payment = PaymentResult(
        ok=False, error_code="payment_unavailable", detail=outcome.error, attempts=outcome.attempts
    )
    return Stop("failed", f"payment unavailable after {outcome.attempts} attempts")


def create_shipment(
    context: df.DurableOrchestrationContext, run: OrderRun
) -> Generator[Any, Any, Stop | None]:
    """Create the shipment: the saga's pivot, after which the order is no longer undone."""
    if stop := run.cancelled():
        return stop
    run.show(context, "creating_shipment")
    request = CreateShipmentInput(
        order_id=run.order.order_id, address=run.order.shipping_address, items=run.order.items
    )
    try:
        answer = yield context.call_activity_with_retry(
            "create_shipment", FAULT_RETRY, request.to_wire()
        )
    except Exception as error:
        return Stop("failed", f"shipment could not be created: {failure_reason(error)}")
    run.shipment = ShipmentResult.model_validate(answer)
    if not run.shipment.ok:
        return Stop("failed", f"{run.shipment.error_code}: {run.shipment.detail}")
    return None
