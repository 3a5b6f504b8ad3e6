"""The ``process_order`` orchestrator: validate, reserve, approve, charge, ship, finalize.

The instance ID is the order ID. On any failure or cancellation the completed steps go to the
generic ``saga`` sub-orchestration, which undoes them in reverse (refund, then release each
reservation). When a compensation keeps failing the order waits, listed as
``compensation_failed`` in the ``Orders`` read model, for a person's ``ManualResolution``.

Registered in models.registry with its events, so the generic event endpoint validates
``ManagerApproval``, ``CancelOrder`` and ``ManualResolution`` payloads.
"""

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

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
    reserve_inventory,
)
from models.common import parse_event
from models.inventory import INVENTORY_ENTITY, ReservationRequest
from models.orders import (
    CancelOrderEvent,
    ManagerApprovalEvent,
    ManualResolutionEvent,
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
    yield context.task_all(
        [
            context.call_entity(
                df.EntityId(INVENTORY_ENTITY, record.sku),
                "commit",
                ReservationRequest(reservation_id=record.reservation_id).to_wire(),
            )
            for record in run.reservations
        ]
    )
    for record in run.reservations:
        record.status = "committed"
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
            f"Reason: {stop.reason}. Anything charged is refunded and reserved stock released.",
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
        for compensation in failed:
            compensation.status = "resolved"
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
    order = OrderInput.model_validate(context.get_input(expected_type=dict))
    # Listening from the first episode keeps a cancel raised at any time, checked between steps.
    run = OrderRun(order, order_total(order), context.wait_for_external_event(CANCEL_EVENT))
    run.show(context, "validating")
    yield _record(context, run, "processing", "validating")
    problems = order_problems(order)
    if problems:
        reason = "invalid order: " + "; ".join(problem["message"] for problem in problems)
        return (yield from _undo(context, run, Stop("failed", reason)))
    needs_approval = run.total >= order.settings.approval_threshold
    for step in (reserve_inventory, await_approval, charge_payment, create_shipment):
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
            return (yield from _undo(context, run, stop))
        if step is await_approval and needs_approval:
            yield _record(context, run, "processing", "processing_payment")
    return (yield from _finalize(context, run))
