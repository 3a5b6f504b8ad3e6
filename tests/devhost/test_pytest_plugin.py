"""devhost's pytest plugin, as this repository's tests use it: options reach the host, and the
Azurite marker puts the test's task hub in Azure Storage. (The plugin in an outside app, and a
timed-out wait's message, are checked in tests/packaging/.)"""

from __future__ import annotations

import pytest
from azure.data.tables import TableServiceClient

from devhost.blocking_host import BlockingDurableHost
from devhost.engine.clock import VirtualClock
from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.testing import DurableTestHost


def test_the_sync_fixture_runs_on_the_memory_store_with_the_virtual_clock(
    durable_host: BlockingDurableHost,
) -> None:
    assert isinstance(durable_host.host.store, MemoryStore)
    assert isinstance(durable_host.host.clock, VirtualClock)
    assert durable_host.host.clock.skips_time
    assert "process_order" in durable_host.host.index.orchestrators


@pytest.mark.durable_host(virtual_time="manual")
async def test_marker_options_reach_the_host(async_durable_host: DurableTestHost) -> None:
    clock = async_durable_host.clock

    assert isinstance(clock, VirtualClock) and not clock.skips_time


@pytest.mark.azurite
@pytest.mark.durable_store("azurite")
async def test_the_azurite_marker_keeps_the_hub_in_azure_storage(
    async_durable_host: DurableTestHost, durable_storage_connection: str
) -> None:
    with TableServiceClient.from_connection_string(durable_storage_connection) as service:
        tables = {table.name for table in service.list_tables()}

    assert isinstance(async_durable_host.store, AzureStore)
    assert f"{async_durable_host.task_hub}Instances" in tables
