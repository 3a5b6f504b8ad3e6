"""How soon a client hears that storage is down while background writes ride the outage out.

Run: ``.venv/bin/python bench/outage_client_write.py [--backlog 0 40 300]``. Starts a private
Azurite on free ports and an Azure store behind the retrying layer, as the host runs it, with
faults injected under the SDK clients (``devhost.store.faults``). For each fault and backlog:
``backlog`` background checkpoints (the group commit's, each keeping on through the outage) are
sent, storage fails every request for 5 s (so it counts as down and the backlog cycles through
the write window), then one write a client waits for (``for_a_client``: the checkpoint of a
finished instance whose status is read) is timed until its ``StorageUnavailable`` (the 503).

* ``busy``: every request answered 503 ServerBusy (each SDK retries it, about a second);
* ``timeout``: every request hangs 2 s, then fails (a frozen emulator, a network that drops
  packets; real timeouts last longer).

Each write holds a slot of the window (16) through its SDK's retries. A client's write goes
before the waiting background writes, so its 503 should not grow with the backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devhost.azurite import free_ports, start_azurite  # noqa: E402
from devhost.engine.history import execution_started  # noqa: E402
from devhost.store.base import Checkpoint, InstanceRow  # noqa: E402
from devhost.store.faults import FaultInjector, FaultPlan, faulty_azure_store  # noqa: E402
from devhost.store.retrying import RetryingStore, StorageUnavailable  # noqa: E402
from devhost.store.write_window import for_a_client  # noqa: E402

FAULTS = {
    "busy": FaultPlan(rate=1.0, kinds=("busy",)),
    "timeout": FaultPlan(rate=1.0, kinds=("timeout",), timeout_seconds=2.0),
}
OUTAGE_BEFORE_CLIENT_SECONDS = 5.0


def checkpoint(instance_id: str) -> Checkpoint:
    now = datetime.now(UTC)
    started = execution_started(now, instance_id, "exec-1", "HelloSequence5", "1")
    row = InstanceRow(instance_id, "HelloSequence5", "exec-1", "Completed", now, now, input="1")
    return Checkpoint(row=row, history=[started], persisted_count=0, stored_rows=0)


async def client_wait(connection_string: str, fault: str, backlog: int) -> float:
    """Seconds from a client's write to its StorageUnavailable, with ``backlog`` waiting."""
    injector = FaultInjector(FaultPlan())
    hub = f"Outage{fault.capitalize()}{backlog}"
    store = RetryingStore(faulty_azure_store(connection_string, hub, injector))
    await store.open()
    injector.plan = FAULTS[fault]
    writes = [
        asyncio.ensure_future(store.write_checkpoint(checkpoint(f"background-{n}")))
        for n in range(backlog)
    ]
    try:
        await asyncio.sleep(OUTAGE_BEFORE_CLIENT_SECONDS)
        start = time.perf_counter()
        try:
            with for_a_client():
                await store.write_checkpoint(checkpoint("client"))
        except StorageUnavailable:
            return time.perf_counter() - start
        raise AssertionError("the client's write succeeded during the outage")
    finally:
        for write in writes:
            write.cancel()
        await asyncio.gather(*writes, return_exceptions=True)
        injector.plan = FaultPlan()
        await store.close()


async def main(backlogs: list[int]) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-azurite-"))
    azurite = start_azurite(ROOT, data_dir, free_ports(3))
    try:
        print(f"{'fault':<8} {'backlog':>7} {'client 503 after':>17}")
        for fault in FAULTS:
            for backlog in backlogs:
                seconds = await client_wait(azurite.connection_string, fault, backlog)
                print(f"{fault:<8} {backlog:>7} {seconds:>15.2f} s")
    finally:
        azurite.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, nargs="+", default=[0, 40, 300])
    asyncio.run(main(parser.parse_args().backlog))
