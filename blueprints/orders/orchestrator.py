"""The ``process_order`` orchestrator: validate, reserve, approve, charge, ship, finalize.

The instance ID is the order ID. On any failure or cancellation the completed steps go to the
generic ``saga`` sub-orchestration, which undoes them in reverse (refund, then release each
reservation). That includes a failure of the orchestration itself before the shipment (an
activity that exhausted its retries, an unexpected exception): a catch-all turns it into a
failed order and compensates, as the saga in the guide does. When a compensation keeps failing
the order waits, listed as ``compensation_failed`` in the ``Orders`` read model, for a person's
``ManualResolution``. The customer is told what really happened to their money: refunded, not
charged, or (when the refund failed) that the refund is being handled.

Registered in models.registry with its events, so the generic event endpoint validates
``ManagerApproval``, ``CancelOrder`` and ``ManualResolution`` payloads.
"""

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from blueprints import key_reuse
from blueprints.log_fields import log_fields
from blueprints.orders.rules import OPERATIONS_RECIPIENT, notification, order_problems, order_total
from blueprints.orders.steps import (
    APPROVAL_EVENT,
    CANCEL_EVENT,
    FAULT_RETRY,
    OrderRun,
    Stop,
    await_approval,
    charge_payment,
    create_shipment,
    renew_reservations,
    reserve_inventory,
)
from models.common import parse_event
from models.inventory import INVENTORY_ENTITY, InventoryOutcome, ReservationRequest
from models.orders import (
    CancelOrderEvent,
    ManagerApprovalEvent,
    ManualResolutionEvent,
    OrderDecisionRecord,
    OrderInput,
    OrderResult,
    RecordOrderInput,
    TrackDeliveryInput,
)
from models.registry import register_workflow
from models.saga import CompensationRecord, SagaInput, SagaResult

logger = logging.getLogger(__name__)

bp = df.Blueprint()

RESOLUTION_EVENT = "ManualResolution"

register_workflow(
    "process_order",
    OrderInput,
    events={
        APPROVAL_EVENT: ManagerApprovalEvent,
        CANCEL_EVENT: CancelOrderEvent,
        RESOLUTION_EVENT: ManualResolutionEvent,
    },
    routes={
        APPROVAL_EVENT: "POST /api/orders/{instanceId}/approval",
        CANCEL_EVENT: "POST /api/orders/{instanceId}/cancel",
        RESOLUTION_EVENT: "POST /api/orders/{instanceId}/resolution",
    },
)


def _record(
    context: df.DurableOrchestrationContext, run: OrderRun, status: str, stage: str, reason=None
) -> Any:
    row = RecordOrderInput(
        order_id=run.order.order_id,
        customer_id=run.order.customer_id,
        status=status,  # type: ignore[arg-type]
        stage=stage,  # type: ignore[arg-type]
        total=run.total,
        failure_reason=reason,
        updated_at=context.current_utc_datetime,
    )
    return context.call_activity_with_retry("record_order", FAULT_RETRY, row.to_wire())


def _notify(context: df.DurableOrchestrationContext, message: Any) -> Any:
    return context.call_activity_with_retry("send_notification", FAULT_RETRY, message.to_wire())


def _result(context: df.DurableOrchestrationContext, run: OrderRun, status: str, **extra: Any):
    return OrderResult(
        order_id=run.order.order_id,
        status=status,  # type: ignore[arg-type]
        total=run.total,
        inventory_reservation=run.reservations,
        payment=run.payment,
        shipment=run.shipment,
        completed_at=context.current_utc_datetime,
        **extra,
    ).to_wire()


def _finalize(
    context: df.DurableOrchestrationContext, run: OrderRun
) -> Generator[Any, Any, dict[str, Any]]:
    order = run.order
    run.show(context, "finalizing")
    answers = yield context.task_all(
        [
            context.call_entity(
                df.EntityId(INVENTORY_ENTITY, record.sku),
                "commit",
                ReservationRequest(reservation_id=record.reservation_id).to_wire(),
            )
            for record in run.reservations
        ]
    )
    lapsed = []
    for record, answer in zip(run.reservations, answers, strict=True):
        if InventoryOutcome.model_validate(answer).ok:
            record.status = "committed"
        else:
            # Only when the host stopped for longer than the hold between the renewal and
            # here: the goods shipped, the stock went back to sale; a person must reconcile.
            record.status = "expired"
            lapsed.append(record.sku)
    if lapsed:
        yield _notify(
            context,
            notification(
                order,
                "order_needs_attention",
                f"Order {order.order_id}: shipped stock was no longer reserved",
                f"The reservations of {', '.join(lapsed)} expired before they were committed; "
                "count the stock by hand.",
                recipient=OPERATIONS_RECIPIENT,
            ),
        )
    assert run.shipment is not None and run.shipment.shipment_id and run.shipment.tracking_number
    tracking_input = TrackDeliveryInput(
        order_id=order.order_id,
        shipment_id=run.shipment.shipment_id,
        tracking_number=run.shipment.tracking_number,
    )
    confirmation = notification(
        order,
        "order_confirmation",
        f"Order {order.order_id} is on its way",
        f"We charged {run.total:.2f} {order.settings.currency}; tracking number "
        f"{run.shipment.tracking_number}.",
    )
    tracking: Any = None
    try:
        _, tracking = yield context.task_all(
            [
                _notify(context, confirmation),
                context.call_sub_orchestrator(
                    "track_delivery", tracking_input.to_wire(), f"{order.order_id}:tracking"
                ),
            ]
        )
    except Exception as error:
        # Past the pivot nothing is undone: a tracking hiccup must not fail a shipped order.
        if not context.is_replaying:
            logger.warning("order %s: tracking not started: %s", order.order_id, error)
    yield _record(context, run, "completed", "completed")
    run.show(context, "completed")
    return _result(context, run, "completed", tracking=tracking)


REFUND_STEP = "charge"  # the saga step whose compensation is the refund


def _money_sentence(run: OrderRun, compensations: list[CompensationRecord]) -> str:
    """What the customer is told about their money: only what is true."""
    refund = next((c for c in compensations if c.step == REFUND_STEP), None)
    if refund is None:
        return "Nothing was charged."
    if refund.status != "compensated":
        # Never "refunded" when it was not: the operations team is alerted and settles it.
        return (
            "Your payment could not be refunded automatically yet; our team is on it and will "
            "let you know when it is done."
        )
    amount = refund.output.get("amount") if isinstance(refund.output, dict) else None
    if not amount:
        return "Nothing was charged."
    return f"The {amount:.2f} {run.order.settings.currency} charged is refunded."


def _undo(
    context: df.DurableOrchestrationContext, run: OrderRun, stop: Stop
) -> Generator[Any, Any, dict[str, Any]]:
    order = run.order
    run.show(context, "compensating", last_error=stop.reason)
    compensations: list[CompensationRecord] = []
    if run.undo:
        saga_input = SagaInput(
            steps=run.undo,
            abort_reason=stop.reason,
            compensation_retry=order.settings.compensation_retry,
        )
        saga = SagaResult.model_validate(
            (
                yield context.call_sub_orchestrator(
                    "saga", saga_input.to_wire(), f"{order.order_id}:saga"
                )
            )
        )
        compensations = saga.compensations
        released = {c.step for c in compensations if c.status == "compensated"}
        for record in run.reservations:
            if f"reserve:{record.sku}" in released:
                record.status = "released"
    word = "cancelled" if stop.outcome == "cancelled" else "could not be completed"
    yield _notify(
        context,
        notification(
            order,
            f"order_{stop.outcome}",
            f"Order {order.order_id} {word}",
            f"Reason: {stop.reason}. {_money_sentence(run, compensations)}",
        ),
    )
    resolution = None
    failed = [c for c in compensations if c.status == "failed"]
    if failed:
        yield _record(context, run, "compensation_failed", "compensation_failed", stop.reason)
        yield _notify(
            context,
            notification(
                order,
                "order_needs_attention",
                f"Order {order.order_id}: compensation failed",
                "Undo by hand, then raise ManualResolution: "
                + "; ".join(f"{c.step} ({c.action}): {c.error}" for c in failed),
                recipient=OPERATIONS_RECIPIENT,
            ),
        )
        # Shown once listed and alerted, so whoever sees this stage also finds the order listed.
        run.show(context, "compensation_failed", last_error=failed[0].error)
        resolution = parse_event(
            ManualResolutionEvent, (yield context.wait_for_external_event(RESOLUTION_EVENT))
        )
        run.decisions["resolution"] = OrderDecisionRecord(
            by=resolution.resolved_by,
            request_id=resolution.request_id,
            decided_at=context.current_utc_datetime,
            text_fingerprint=key_reuse.digest(resolution.note),
        )
        run.show(context, "compensation_failed", last_error=failed[0].error)
        for compensation in failed:
            compensation.status = "resolved"
        if any(c.step == REFUND_STEP for c in failed):
            note = f" ({resolution.note})" if resolution.note else ""
            yield _notify(
                context,
                notification(
                    order,
                    "order_refund_settled",
                    f"Order {order.order_id}: your refund is settled",
                    f"Our team settled the refund of your payment{note}.",
                ),
            )
    yield _record(context, run, stop.outcome, stop.outcome, stop.reason)
    run.show(context, stop.outcome, last_error=stop.reason)  # type: ignore[arg-type]
    return _result(
        context,
        run,
        stop.outcome,
        failure_reason=stop.reason,
        compensations=compensations,
        manual_resolution=resolution,
    )


def _forward(
    context: df.DurableOrchestrationContext, run: OrderRun
) -> Generator[Any, Any, Stop | None]:
    order = run.order
    problems = order_problems(order)
    if problems:
        reason = "invalid order: " + "; ".join(problem["message"] for problem in problems)
        return Stop("failed", reason)
    needs_approval = run.total >= order.settings.approval_threshold
    steps = (reserve_inventory, await_approval, renew_reservations, charge_payment, create_shipment)
    for step in steps:
        if step is await_approval and needs_approval:
            yield _record(context, run, "awaiting_approval", "awaiting_approval")
        stop = yield from step(context, run)
        if stop is not None:
            if not context.is_replaying:
                logger.info(
                    "order stopped %s",
                    log_fields(
                        instanceId=context.instance_id,
                        workflow="process_order",
                        event="stopped",
                        outcome=stop.outcome,
                        reason=stop.reason,
                    ),
                )
            return stop
        if step is await_approval and needs_approval:
            yield _record(context, run, "processing", "processing_payment")
    return None


def _has_hold_setting(raw: Any) -> bool:
    # An input written by today's models holds reservationHoldHours; one of an order started
    # before reservations had limits does not, and replays without them (same actions).
    settings = raw.get("settings") if isinstance(raw, dict) else None
    return isinstance(settings, dict) and "reservationHoldHours" in settings


@bp.orchestration_trigger(context_name="context")
def process_order(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Process one order end to end, undoing the completed steps when it cannot finish.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        Its input is a :class:`~models.orders.OrderInput` as JSON; the instance ID is the
        order ID.

    Returns
    -------
    dict[str, Any]
        A :class:`~models.orders.OrderResult` as JSON.
    """
    raw = context.get_input(expected_type=dict)
    order = OrderInput.model_validate(raw)
    run = OrderRun(order, order_total(order), context.wait_for_external_event(CANCEL_EVENT))
    run.holds_expire = _has_hold_setting(raw)
    run.show(context, "validating")
    try:
        first = _record(context, run, "processing", "validating")
        # Yielded with the first step, so the SDK registers the cancel wait now: a CancelOrder
        # raised at any time is then seen by the checks between steps.
        yield context.task_any([first, run.cancel])
        yield first
        stop = yield from _forward(context, run)
    except Exception as error:
        # The saga's catch-all: whatever failed before the shipment, undo what was done.
        if not context.is_replaying:
            logger.error("order %s failed unexpectedly: %s", order.order_id, error)
        stop = Stop("failed", "an internal error stopped the order before it shipped")
    if stop is not None:
        return (yield from _undo(context, run, stop))
    return (yield from _finalize(context, run))
