"""Durable entities: client signals, calls from orchestrators, failures, reads."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from devhost.engine.api import InvalidRequest
from devhost.testing import DurableTestHost
from tests.devhost.apps.counters import INDEX


@pytest.fixture
async def host() -> AsyncIterator[DurableTestHost]:
    async with DurableTestHost(index=INDEX) as test_host:
        yield test_host


def client_body(value: Any) -> str:
    """The request body the Python client sends for ``signal_entity`` (§6.3): the value
    JSON-encoded twice, which the host stores as the operation's input."""
    return json.dumps(json.dumps(value))


def new_key() -> str:
    return uuid.uuid4().hex[:8]


async def read_state(host: DurableTestHost, key: str) -> Any:
    exists, state = await host.engine.read_entity("counter", key)
    assert exists
    assert state is not None
    return json.loads(state)


async def test_signal_from_a_client_updates_the_state(host: DurableTestHost) -> None:
    key = new_key()
    await host.engine.signal_entity("Counter", key, "add", client_body(5))
    await host.idle()

    assert await read_state(host, key) == 5


async def test_unknown_entity_never_existed(host: DurableTestHost) -> None:
    assert await host.engine.read_entity("counter", new_key()) == (False, None)


async def test_signal_to_an_unknown_entity_function_is_refused(host: DurableTestHost) -> None:
    with pytest.raises(InvalidRequest, match="is not an entity function"):
        await host.engine.signal_entity("NoSuchEntity", "k", "add", client_body(1))


@pytest.mark.parametrize("key", ["k" * 300, "a%2Fb", "a%00b", "a%23b"])
async def test_a_key_no_store_can_keep_is_refused_before_the_signal_is_accepted(
    host: DurableTestHost, key: str
) -> None:
    # The entity's ID is its row's partition key: Azure Tables refuse one over 1 KiB or holding
    # '/', '\\', '#', '?' or a control character, so an accepted signal could never be applied
    # (its checkpoint failed on every retry, and every listing that waits for it with it).
    http = await host.http()
    base = "/runtime/webhooks/durabletask/entities/counter"

    signalled = await http.post(f"{base}/{key}?op=add", json=1)
    read = await http.get(f"{base}/{key}")

    assert signalled.status == 400
    assert "entity key" in (await signalled.json())["Message"]
    assert read.status == 400
    await host.idle()
    listed = await http.get("/runtime/webhooks/durabletask/entities")
    assert listed.status == 200 and await listed.json() == []


@pytest.mark.parametrize("operation", ["suspend", "resume", "rewind", "terminate", "raiseEvent/Go"])
async def test_an_orchestration_command_to_an_entity_is_refused(
    host: DurableTestHost, operation: str
) -> None:
    # Entities are not orchestrations: a terminate once left one recorded as failed.
    key = new_key()
    await host.engine.signal_entity("Counter", key, "add", client_body(5))
    await host.idle()
    http = await host.http()

    answer = await http.post(
        f"/runtime/webhooks/durabletask/instances/@counter@{key}/{operation}", json=1
    )

    assert answer.status == 400
    assert "names an entity" in (await answer.json())["ExceptionMessage"]
    await host.engine.signal_entity("Counter", key, "add", client_body(1))
    await host.idle()
    assert await read_state(host, key) == 6
    listed = await http.get("/runtime/webhooks/durabletask/entities")
    assert [entity["entityId"]["key"] for entity in await listed.json()] == [key]


async def test_concurrent_signals_are_all_applied(host: DurableTestHost) -> None:
    key = new_key()
    await asyncio.gather(
        *(host.engine.signal_entity("Counter", key, "add", client_body(1)) for _ in range(50))
    )
    await host.idle()

    assert await read_state(host, key) == 50


async def test_failing_signal_in_a_batch_leaves_the_others_applied(
    host: DurableTestHost,
) -> None:
    key = new_key()
    await asyncio.gather(
        host.engine.signal_entity("Counter", key, "add", client_body(1)),
        host.engine.signal_entity("Counter", key, "fail", None),
        host.engine.signal_entity("Counter", key, "add", client_body(2)),
    )
    await host.idle()

    assert await read_state(host, key) == 3


async def test_call_entity_returns_the_operation_result(host: DurableTestHost) -> None:
    key = new_key()
    status = await host.run("add_and_read", key)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == [5, 7]
    assert await read_state(host, key) == 7


async def test_failing_operation_raises_in_the_caller_only(host: DurableTestHost) -> None:
    key = new_key()
    status = await host.run("failing_operation", key)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"failure": "counters cannot fail on demand", "value": 1}
    assert await read_state(host, key) == 1


async def test_signal_from_an_orchestrator_is_applied_before_its_later_call(
    host: DurableTestHost,
) -> None:
    key = new_key()
    status = await host.run("signal_then_read", key)

    assert status["output"] == 10


async def test_entity_ids_are_instance_names_lower_cased(host: DurableTestHost) -> None:
    key = new_key()
    await host.engine.signal_entity("COUNTER", key, "add", client_body(3))
    await host.idle()

    assert await read_state(host, key) == 3
