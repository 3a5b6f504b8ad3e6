"""The order, inventory and saga models: wire spellings, constraints and the backoff schedule."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from blueprints.inventory.stock import apply_operation as apply_operation_at
from blueprints.orders.rules import order_problems, order_total, quantities_by_sku
from blueprints.saga.actions import INVENTORY_RESERVATION, PAYMENT
from models.inventory import InventoryState
from models.orders import OrderInput
from models.saga import BackoffPolicy, SagaInput, SagaStep

ORDER = {
    "orderId": "o-1",
    "customerId": "c-1",
    "customerEmail": "a@example.com",
    "items": [
        {"productId": "p", "sku": "A", "name": "n", "quantity": 2, "unitPrice": 0.1},
        {"productId": "p", "sku": "A", "name": "n", "quantity": 1, "unitPrice": 0.2},
    ],
    "shippingAddress": {"street": "s", "city": "c", "state": "st", "zipCode": "1", "country": "US"},
    "paymentDetails": {"method": "paypal", "token": "tok_visa"},
}


def test_backoff_grows_by_the_factor_up_to_the_cap() -> None:
    policy = BackoffPolicy(first_delay_seconds=1, factor=3, max_delay_seconds=20, max_attempts=6)
    assert [policy.delay(n) / timedelta(seconds=1) for n in range(1, 6)] == [1, 3, 9, 20, 20]


def test_order_defaults_and_totals_in_cents() -> None:
    order = OrderInput.model_validate(ORDER)
    assert order.settings.approval_threshold == 1000
    assert order.settings.approval_timeout_hours == 24
    assert order_total(order) == 0.4
    assert quantities_by_sku(order) == [("A", 3)]
    assert order_problems(order) == []


def test_unknown_payment_method_is_refused() -> None:
    with pytest.raises(ValidationError):
        OrderInput.model_validate({**ORDER, "paymentDetails": {"method": "cash", "token": "t"}})


def test_a_step_takes_a_registered_action_never_a_function_name() -> None:
    with pytest.raises(ValidationError):
        SagaStep.model_validate({"name": "x"})
    with pytest.raises(ValidationError, match="not a compensable action"):
        SagaStep.model_validate({"name": "x", "action": "send_notification"})
    with pytest.raises(ValidationError, match="needs the entity 'key'"):
        SagaStep.model_validate({"name": "x", "action": INVENTORY_RESERVATION})
    step = SagaStep.model_validate({"name": "x", "action": PAYMENT, "completed": True})
    assert step.has_compensation
    with pytest.raises(ValidationError):
        SagaInput.model_validate({"steps": [{"name": "a", "action": PAYMENT}] * 2})


NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)


def apply_operation(sku: str, state: InventoryState, operation: str, payload: object):  # type: ignore[no-untyped-def]
    """The entity's operation at a fixed time."""
    return apply_operation_at(sku, state, operation, payload, NOW)


def test_inventory_operations_are_idempotent_by_id() -> None:
    state = InventoryState()
    apply_operation("A", state, "add", {"quantity": 5, "restockId": "r"})
    apply_operation("A", state, "add", {"quantity": 5, "restockId": "r"})
    first = apply_operation("A", state, "reserve", {"reservationId": "o1", "quantity": 3})
    again = apply_operation("A", state, "reserve", {"reservationId": "o1", "quantity": 3})
    short = apply_operation("A", state, "reserve", {"reservationId": "o2", "quantity": 3})
    assert first.ok and again.ok and (state.available, state.reserved) == (2, 3)
    assert (short.ok, short.error_code) == (False, "out_of_stock")
    apply_operation("A", state, "commit", {"reservationId": "o1"})
    apply_operation("A", state, "release", {"reservationId": "o1"})  # too late: no effect
    assert (state.available, state.reserved, state.reservations) == (2, 0, {})
    late = apply_operation("A", state, "reserve", {"reservationId": "o1", "quantity": 1})
    assert late.error_code == "invalid_request" and state.available == 2


def test_a_reservation_expires_at_its_limit_and_cannot_be_committed_then() -> None:
    state = InventoryState()
    limit = (NOW + timedelta(hours=1)).isoformat()
    apply_operation("A", state, "add", {"quantity": 5})
    apply_operation(
        "A", state, "reserve", {"reservationId": "o1", "quantity": 3, "expiresAt": limit}
    )
    assert (state.available, state.reserved) == (2, 3)
    later = NOW + timedelta(hours=2)
    outcome = apply_operation_at("A", state, "commit", {"reservationId": "o1"}, later)
    assert (outcome.ok, outcome.error_code) == (False, "reservation_expired")
    assert (state.available, state.reserved, state.settled["o1"]) == (5, 0, "expired")
    # The lapsed order may take the stock again while it is there; releasing it then works.
    again = apply_operation_at("A", state, "reserve", {"reservationId": "o1", "quantity": 3}, later)
    assert again.ok and (state.available, state.reserved) == (2, 3)
    apply_operation_at("A", state, "release", {"reservationId": "o1"}, later)
    assert (state.available, state.reserved) == (5, 0)


def test_reserving_a_held_reservation_again_moves_its_limit() -> None:
    state = InventoryState()
    apply_operation("A", state, "add", {"quantity": 5})
    first = (NOW + timedelta(hours=1)).isoformat()
    second = NOW + timedelta(hours=5)
    apply_operation(
        "A", state, "reserve", {"reservationId": "o1", "quantity": 2, "expiresAt": first}
    )
    apply_operation(
        "A",
        state,
        "reserve",
        {"reservationId": "o1", "quantity": 2, "expiresAt": second.isoformat()},
    )
    assert state.expires["o1"] == second and state.reserved == 2
    apply_operation_at("A", state, "get", None, NOW + timedelta(hours=3))
    assert state.reserved == 2  # not expired at the first limit
