"""The durable inbox on Azure Storage after a host died while it read the queues."""

from __future__ import annotations

from typing import Any

import pytest

from devhost.azurite import AzuriteProcess
from devhost.store import azure
from devhost.store.azure import AzureStore
from devhost.store.base import StoredMessage


@pytest.mark.azurite
async def test_messages_hidden_by_a_reader_killed_mid_read_are_read_by_the_next_one(
    azurite: AzuriteProcess, task_hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Receiving hides messages for this long; short, so the test does not wait a minute.
    monkeypatch.setattr(azure, "_READ_VISIBILITY_SECONDS", 3)
    first = AzureStore(azurite.connection_string, task_hub)
    second = AzureStore(azurite.connection_string, task_hub)
    try:
        await first.open()
        for n in range(3):
            await first.put_message(StoredMessage(f"000{n}", f"order-{n}", {"kind": "event"}))

        async def killed(*args: Any) -> None:
            raise ConnectionResetError("the host died after receiving, before revealing")

        # A host's recovery received the messages (hiding them) and died before it made them
        # visible again; the host restarted at once reads the queues.
        monkeypatch.setattr(first, "_reveal", killed)
        with pytest.raises(ConnectionResetError):
            await first.read_messages()
        await second.open()
        read = await second.read_messages()
    finally:
        await first.close()
        await second.close()

    assert [m.msg_id for m in read] == ["0000", "0001", "0002"]
