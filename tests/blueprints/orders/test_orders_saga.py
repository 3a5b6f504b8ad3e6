"""The order saga run for real: entities, the ledger on Azurite, compensation through ``saga``."""

from datetime import timedelta

import pytest
from orders_harness import (
    compensated_steps,
    ledger,
    make_order,
    order_host,
    seed,
    shipments,
    stock_of,
)

# Run once with a connection string and once identity-based (a token, no account key).
pytestmark = [pytest.mark.usefixtures("app_storage"), pytest.mark.both_storage_paths]


async def test_happy_path_reserves_charges_ships_and_commits() -> None:
    async with order_host() as host:
        await seed(host, SKU_A=10, SKU_B=3)
        order = make_order("o-happy", [("SKU-A", 2, 10.0), ("SKU-B", 1, 5.5)])
        status = await host.run("process_order", order)
        stock_a, stock_b = await stock_of(host, "SKU-A"), await stock_of(host, "SKU-B")

    result = status["output"]
    assert status["customStatus"]["stage"] == "completed"
    assert result["status"] == "completed"
    assert result["total"] == 25.5
    assert [r["status"] for r in result["inventoryReservation"]] == ["committed", "committed"]
    assert result["payment"]["ok"] and result["payment"]["amount"] == 25.5
    assert result["shipment"]["ok"] and result["tracking"]["status"] == "in_transit"
    assert result["compensations"] == [] and result["failureReason"] is None
    assert (stock_a["available"], stock_a["reserved"], stock_a["reservations"]) == (8, 0, {})
    assert (stock_b["available"], stock_b["reserved"]) == (2, 0)
    charge = ledger("o-happy")["charge"]
    assert (charge["Status"], charge["AmountCents"], charge["Attempts"]) == ("succeeded", 2550, 1)
    assert set(shipments("o-happy")) == {"shipment", "tracking"}


async def test_invalid_order_fails_with_the_reason_and_reserves_nothing() -> None:
    async with order_host() as host:
        await seed(host, SKU_A=10)
        order = make_order("o-invalid", [("SKU-A", 0, 10.0), ("SKU-B", 1, -1.0)])
        status = await host.run("process_order", order)
        stock = await stock_of(host, "SKU-A")

    result = status["output"]
    assert result["status"] == "failed"
    assert "quantity of 'SKU-A' must be positive" in result["failureReason"]
    assert "price of 'SKU-B' must be positive" in result["failureReason"]
    assert result["inventoryReservation"] == [] and result["compensations"] == []
    assert stock["reserved"] == 0 and ledger("o-invalid") == {}


async def test_out_of_stock_releases_only_the_earlier_reservation() -> None:
    async with order_host() as host:
        await seed(host, SKU_A=10, SKU_B=1)
        order = make_order("o-short", [("SKU-A", 2, 10.0), ("SKU-B", 5, 1.0)])
        status = await host.run("process_order", order)
        stock_a = await stock_of(host, "SKU-A")

    result = status["output"]
    assert result["status"] == "failed"
    assert result["failureReason"].startswith("out_of_stock")
    assert compensated_steps(result) == ["reserve:SKU-A"]
    assert (stock_a["available"], stock_a["reserved"]) == (10, 0)
    assert ledger("o-short") == {}


async def test_decline_releases_reservations_in_reverse_and_is_not_retried() -> None:
    async with order_host() as host:
        await seed(host, SKU_A=10, SKU_B=10)
        order = make_order("o-decl", [("SKU-A", 1, 10.0), ("SKU-B", 1, 1.0)], token="tok_decline")
        status = await host.run("process_order", order)
        stocks = [await stock_of(host, sku) for sku in ("SKU-A", "SKU-B")]

    result = status["output"]
    assert result["status"] == "failed"
    assert result["failureReason"] == "payment declined: card declined"
    assert result["payment"]["errorCode"] == "declined" and result["payment"]["attempts"] == 1
    assert compensated_steps(result) == ["reserve:SKU-B", "reserve:SKU-A"]
    assert [(s["available"], s["reserved"]) for s in stocks] == [(10, 0), (10, 0)]
    assert ledger("o-decl")["charge"]["Status"] == "declined"


async def test_undeliverable_address_refunds_then_releases_in_reverse() -> None:
    async with order_host() as host:
        await seed(host, SKU_A=10, SKU_B=10)
        order = make_order("o-ship", [("SKU-A", 1, 10.0), ("SKU-B", 2, 1.0)], zip_code="00000")
        status = await host.run("process_order", order)
        stocks = [await stock_of(host, sku) for sku in ("SKU-A", "SKU-B")]

    result = status["output"]
    assert result["status"] == "failed"
    assert result["failureReason"].startswith("undeliverable")
    assert compensated_steps(result) == ["charge", "reserve:SKU-B", "reserve:SKU-A"]
    assert all(record["status"] == "compensated" for record in result["compensations"])
    rows = ledger("o-ship")
    assert rows["refund"]["Status"] == "succeeded"
    assert rows["refund"]["AmountCents"] == rows["charge"]["AmountCents"] == 1200
    assert [(s["available"], s["reserved"]) for s in stocks] == [(10, 0), (10, 0)]
    assert "shipment" not in shipments("o-ship")


async def test_transient_failures_back_off_exponentially_on_the_virtual_clock() -> None:
    async with order_host() as host:
        await seed(host, SKU_A=10)
        instance = await host.start("process_order", make_order("o-flaky", token="tok_transient_3"))
        status = await host.wait(instance)
        history = (await host.status(instance, history=True)) or {}

    result = status["output"]
    assert result["status"] == "completed"
    assert result["payment"]["attempts"] == 4
    charge = ledger("o-flaky")["charge"]
    assert (charge["Status"], charge["Attempts"], charge["AmountCents"]) == ("succeeded", 4, 2000)
    timers = [e for e in history["historyEvents"] if e["EventType"] == "TimerCreated"]
    fired = [e for e in history["historyEvents"] if e["EventType"] == "TimerFired"]
    assert len(timers) == len(fired) == 3
    # Each wait is measured from the failed attempt's episode time to the timer's FireAt.
    delays = [_seconds_between(e["Timestamp"], e["FireAt"]) for e in timers]
    assert delays == pytest.approx([2, 4, 5], abs=0.01)  # 2, 2*2, min(5, 2*4)


async def test_transient_failures_beyond_the_attempt_limit_fail_and_release() -> None:
    async with order_host() as host:
        await seed(host, SKU_A=10)
        order = make_order("o-down", token="tok_transient_9")
        status = await host.run("process_order", order)
        stock = await stock_of(host, "SKU-A")

    result = status["output"]
    assert result["status"] == "failed"
    assert result["failureReason"] == "payment unavailable after 5 attempts"
    assert compensated_steps(result) == ["reserve:SKU-A"]
    assert stock["available"] == 10 and ledger("o-down")["charge"]["AmountCents"] == 0


def _seconds_between(start: str, end: str) -> float:
    from datetime import datetime

    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(end) - parse(start)) / timedelta(seconds=1)
