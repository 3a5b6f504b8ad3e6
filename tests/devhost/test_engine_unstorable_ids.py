"""An entity or sub-orchestration ID an orchestrator names that no table can keep: the
orchestration fails, and nothing else is affected."""

from __future__ import annotations

import pytest

from devhost.azurite import AzuriteProcess
from devhost.store.azure import AzureStore
from devhost.testing import DurableTestHost
from tests.devhost.apps.counters import INDEX

UNSTORABLE = [
    ("signal_and_finish", "k" * 2000, "The entity key is not valid"),
    ("call_and_finish", "a/b", "The entity key is not valid"),
    ("start_child", "c" * 300, "A sub-orchestration instance ID is not valid"),
    ("start_child", "a#b", "A sub-orchestration instance ID is not valid"),
]


async def _fails_and_the_host_goes_on(host: DurableTestHost, name: str, target: str) -> str:
    failed = await host.wait(await host.start(name, target))
    fine = await host.wait(await host.start("signal_and_finish", "fine"))
    await host.idle()
    http = await host.http()
    listed = await http.get("/runtime/webhooks/durabletask/entities")

    assert failed["runtimeStatus"] == "Failed"
    assert fine["runtimeStatus"] == "Completed"
    assert listed.status == 200
    assert [entity["entityId"]["key"] for entity in await listed.json()] == ["fine"]
    return str(failed["output"])


@pytest.mark.parametrize(("name", "target", "message"), UNSTORABLE)
async def test_an_unstorable_id_fails_the_orchestration(
    name: str, target: str, message: str
) -> None:
    async with DurableTestHost(index=INDEX) as host:
        output = await _fails_and_the_host_goes_on(host, name, target)

    assert output.startswith(f"Orchestrator function '{name}' failed: {message}")
    assert target not in output


@pytest.mark.azurite
async def test_an_unstorable_entity_key_leaves_the_azure_store_working(
    azurite: AzuriteProcess, task_hub: str
) -> None:
    # The signal's checkpoint failed on every retry (Azure Tables refuse a partition key over
    # 1 KiB), and from then on every entity listing answered 500.
    store = AzureStore(azurite.connection_string, task_hub)
    async with DurableTestHost(index=INDEX, store=store, task_hub=task_hub) as host:
        await _fails_and_the_host_goes_on(host, "signal_and_finish", "k" * 2000)
