"""Side-effecting work starts only once the episode that scheduled it is stored.

An orchestration checks an order while its customer may cancel it: if the check wins, it
charges the card (an activity, a sub-orchestration, or an HTTP call), else it ends
"cancelled". The host is killed while the charge runs, before any later checkpoint lands. After
the restart the customer's cancel arrives before the check's result. A charge made must be one
the instance's history records: the instance ends "charged" (the charge is run again, at least
once, as an activity may be), never "cancelled" with the customer's card charged and nothing to
compensate it.

Durable Task Framework sends an activity's message (a child's start) with the checkpoint that
records its ``TaskScheduled`` (``SubOrchestrationInstanceCreated``), so the work a crash takes
back was never started. A host that starts the work when the episode ends and stores the
episode later leaves, after a crash between the two, a side effect no history records: the
re-run orchestrator may take another path (a different event order) and never schedule it.

Each test kills the first host (``tests.durability.crash``: its store takes no write after the
charge began) and recovers the instance on a second host over the same store.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import azure.durable_functions as df
import pytest
from aiohttp import web

from devhost.app.loader import index_app
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost, client_input, describe_instance
from tests.devhost.test_engine_crashes import until
from tests.durability.crash import EngineLife, life_that_crashes
from tests.local_service import serving

TASK_HUB = "dispatchafterwrite"
WAIT_SECONDS = 60.0

app = df.DFApp()

# The charges made (by the activity, the child's activity or the payment service), by order.
ledger: list[str] = []
# Called as a charge starts: the first host freezes its store there (the kill is coming).
on_charge: Callable[[], None] | None = None
# ``check`` returns once this is set (at once in the first host; in the second, only after the
# test raised the cancel, so the cancel arrives first).
check_gate = threading.Event()
# Set once a charge was made (the receipt of the sub-orchestration test waits for it).
charged = threading.Event()


def _charge(order: str) -> None:
    hook = on_charge
    if hook is not None:
        hook()  # nothing after this instant is stored: the host dies while the charge runs
    ledger.append(order)
    charged.set()


@app.activity_trigger(input_name="order")
def check(order: str) -> str:
    if not check_gate.wait(WAIT_SECONDS):
        raise TimeoutError(f"the test never let the check of {order} return")
    return "ok"


@app.activity_trigger(input_name="order")
def charge(order: str) -> str:
    _charge(order)
    return "charged"


@app.activity_trigger(input_name="order")
def send_receipt(order: str) -> str:
    # Runs beside the charging sub-orchestration, and ends only after the charge was made.
    if not charged.wait(WAIT_SECONDS):
        raise TimeoutError(f"the charge of {order} never ran")
    return "sent"


@app.orchestration_trigger(context_name="context")
def charging(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("charge", context.get_input())
    return result


def _check_or_cancel(context: df.DurableOrchestrationContext, order: str) -> Any:
    """The check against the customer's cancel: whichever comes first."""
    checked = context.call_activity("check", order)
    return checked, context.task_any([checked, context.wait_for_external_event("Cancel")])


@app.orchestration_trigger(context_name="context")
def charge_by_activity(context: df.DurableOrchestrationContext):
    order = context.get_input()
    checked, first = _check_or_cancel(context, order)
    if (yield first) is not checked:
        return "cancelled"
    yield context.call_activity("charge", order)
    return "charged"


@app.orchestration_trigger(context_name="context")
def charge_by_sub_orchestration(context: df.DurableOrchestrationContext):
    order = context.get_input()
    checked, first = _check_or_cancel(context, order)
    if (yield first) is not checked:
        return "cancelled"
    # The receipt beside the child keeps the parent's next episode coming (an activity of it
    # in flight), as the charge does in the activity test: the group commit leaves the parent
    # unwritten while the child runs.
    yield context.task_all(
        [
            context.call_sub_orchestrator("charging", order),
            context.call_activity("send_receipt", order),
        ]
    )
    return "charged"


@app.orchestration_trigger(context_name="context")
def charge_by_http(context: df.DurableOrchestrationContext):
    order, url = context.get_input()
    checked, first = _check_or_cancel(context, order)
    if (yield first) is not checked:
        return "cancelled"
    yield context.call_http("POST", url, content={"order": order})
    return "charged"


INDEX = index_app(app)


@pytest.fixture(autouse=True)
def _fresh_world() -> Iterator[None]:
    global on_charge
    ledger.clear()
    on_charge = None
    check_gate.set()  # the first host's check returns at once
    charged.clear()
    try:
        yield
    finally:
        on_charge = None
        check_gate.set()  # no activity thread is left waiting
        charged.set()


@pytest.fixture
async def payment_url() -> AsyncIterator[str]:
    """A payment service whose every call is a charge."""

    async def pay(request: web.Request) -> web.Response:
        body = await request.json()
        _charge(body["order"])
        return web.json_response({"paid": True})

    async with serving("/pay", pay) as url:
        yield url


def _freeze_at_charge(life: EngineLife) -> None:
    """From the first charge on, the first host's store takes no write (as if killed)."""
    global on_charge

    def freeze() -> None:
        global on_charge
        on_charge = None
        life.point.stop_after(0)

    on_charge = freeze


async def _killed_while_charging(store: MemoryStore, name: str, value: Any) -> str:
    """The first host: the instance starts, its check wins, the charge starts, the host dies."""
    async with life_that_crashes(INDEX, store) as first:
        _freeze_at_charge(first)
        instance_id = await first.engine.start_new(name, None, client_input(value))
        await until(lambda: bool(ledger), "the charge was made", WAIT_SECONDS)
    assert ledger == ["order-1"], "the first host made one charge before it died"
    return instance_id


async def _cancelled_after_restart(store: MemoryStore, instance_id: str) -> None:
    """The second host: the customer's cancel arrives before the recovered check's result."""
    check_gate.clear()  # a check run again returns only after the cancel was raised
    async with DurableTestHost(index=INDEX, store=store, task_hub=TASK_HUB) as second:
        await second.raise_event(instance_id, "Cancel", "customer")
        check_gate.set()
        status = await second.wait(instance_id, WAIT_SECONDS)
        shown = await second.status(instance_id, history=True)
        assert status["runtimeStatus"] == "Completed", describe_instance(shown or status)
        assert shown is not None
        # Every charge made is one the instance records: it ends "charged" iff a charge was
        # made (the charge may have been made twice: an activity runs at least once).
        assert (status["output"] == "charged") == bool(ledger), (
            f"the card was charged {len(ledger)} time(s) (ledger {ledger}) but the instance "
            f"ended {status['output']!r}: a charge no history records (the work was started "
            f"before the episode that scheduled it was stored, and the crash took that episode "
            f"back)\n{describe_instance(shown)}"
        )


async def test_an_activity_started_before_its_episode_is_stored_leaves_no_phantom_charge() -> None:
    """A customer cancels an order after a crash: their card is charged only if the instance
    ends "charged" (the charge activity is in its history)."""
    store = MemoryStore(TASK_HUB)
    instance_id = await _killed_while_charging(store, "charge_by_activity", "order-1")
    await _cancelled_after_restart(store, instance_id)


async def test_a_child_started_before_its_parent_s_episode_is_stored_leaves_no_phantom_charge() -> (
    None
):
    """The charge is a sub-orchestration's activity: it is made only for a parent whose
    history records the child (the parent ends "charged").

    The parent's receipt activity, beside the child, matters: a parent with no activity in
    flight is written by the group commit right after the episode that started the child,
    before the child's activity runs, so the kill would not take the child's creation back."""
    store = MemoryStore(TASK_HUB)
    instance_id = await _killed_while_charging(store, "charge_by_sub_orchestration", "order-1")
    await _cancelled_after_restart(store, instance_id)


async def test_an_http_call_made_before_its_episode_is_stored_leaves_no_phantom_charge(
    payment_url: str,
) -> None:
    """The charge is a ``call_http`` to a payment service: the service is called only for an
    instance whose history records the call (it ends "charged")."""
    store = MemoryStore(TASK_HUB)
    instance_id = await _killed_while_charging(store, "charge_by_http", ["order-1", payment_url])
    await _cancelled_after_restart(store, instance_id)
