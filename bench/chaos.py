"""Chaos run of the real host: many workflows of every kind, SIGKILL at random instants (one
during recovery), then the invariants checked from storage.

Run: ``.venv/bin/python bench/chaos.py [--runs 20] [--workflows 100] [--kills 3] [--seed 1]``.
It starts a private Azurite on free ports (or uses ``--connection-string``); each run gets a
fresh task hub and a fresh prefix for the app's own tables and blobs, then:

1. starts ``python -m devhost start`` and stocks the order SKUs;
2. starts ``--workflows`` clients at once (orders with every payment token and with approvals,
   cancels and undeliverable addresses; documents with their events in random order; approval
   chains with deadlines; batches, some cancelled), each recording what the host acknowledged;
3. kills the host with SIGKILL ``--kills - 1`` times at random instants, and once more during
   the recovery that follows a restart, restarting it each time;
4. lets every client finish, stops the host, and checks the invariants (``chaos_invariants``)
   from the task hub's tables and the app's ledgers.

The seed fixes every choice (the workflows, their events and decisions, the kill instants);
timing on a shared machine does the rest. Exit status 1 if any invariant broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import aiohttp  # noqa: E402
from chaos_host import ChaosHost  # noqa: E402
from chaos_invariants import INVARIANTS, check  # noqa: E402
from chaos_workflows import SKUS, STOCK_PER_SKU, Api, Stats, drive, plan_workflows  # noqa: E402

from blueprints import app_storage  # noqa: E402
from devhost.azurite import AzuriteProcess, free_ports, start_azurite  # noqa: E402
from devhost.store.azure import AzureStore  # noqa: E402


@dataclass
class RunResult:
    """One run: what was done to the host, what it acknowledged, what held."""

    seed: int
    task_hub: str
    storage_prefix: str
    workflows: dict[str, int]
    kills: int
    kills_during_recovery: int
    acknowledged_starts: int
    acknowledged_events: int
    events_as_it_ended: int  # acknowledged as their instance ended: dropped, not lost
    ended: int
    seconds: float
    recovery_seconds: list[float]
    stats: dict[str, Any]
    broken: dict[str, list[str]] = field(default_factory=dict)

    @property
    def held(self) -> bool:
        return not any(self.broken.values()) and not self.stats["server_errors"]


async def _restock(api: Api, tag: str) -> None:
    for sku in SKUS:
        body = {"quantity": STOCK_PER_SKU, "restockId": f"{tag}-{sku}"}
        answer = await api.event("POST", f"/api/inventory/{sku}", body)
        assert answer.status == 202, answer
    deadline = time.monotonic() + 60
    for sku in SKUS:
        while True:
            answer = await api.get(f"/api/inventory/{sku}")
            if answer.status == 200 and answer.body["available"] == STOCK_PER_SKU:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"stock of {sku} never arrived: {answer}")
            await asyncio.sleep(0.1)


async def run_once(
    connection_string: str, seed: int, workflows: int, kills: int, deadline: float, logs: Path
) -> RunResult:
    """One chaos run against a fresh task hub."""
    rng = random.Random(seed)
    tag = f"{seed}x{uuid.uuid4().hex[:6]}"
    task_hub = f"Chaos{seed}x{uuid.uuid4().hex[:8]}"
    prefix = f"C{uuid.uuid4().hex[:10]}"
    os.environ[app_storage.STORAGE_SETTING] = connection_string
    os.environ[app_storage.PREFIX_SETTING] = prefix
    app_storage.reset_clients()
    host = ChaosHost(
        connection_string,
        task_hub,
        logs / f"{task_hub}.log",
        {app_storage.PREFIX_SETTING: prefix, "BATCH_CHUNK_LATENCY_MS": "30"},
    )
    began = time.monotonic()
    stats = Stats()
    planned = plan_workflows(rng, workflows, tag)
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200, force_close=True)
        ) as session:
            api = Api(host.base_url, session, stats)
            await host.start()
            await _restock(api, tag)
            until = time.monotonic() + deadline
            drivers = [
                asyncio.create_task(drive(api, workflow, seed, until, rng.uniform(0, 2)))
                for workflow in planned
            ]
            # Kills at random instants while the workflows run; the restart after the last of
            # them is killed during its recovery (tried again if the recovery finished first).
            for number in range(max(1, kills - 1) if kills else 0):
                await asyncio.sleep(rng.uniform(1.0, 6.0))
                host.kill()
                if number < kills - 2 or kills == 1:
                    await host.start()
                    continue
                # The estimate is the last recovery's length, and this one may be much
                # shorter (fewer messages left): each miss aims earlier.
                for attempt in range(5):
                    fraction = rng.uniform(0.05, 0.7) * 0.3**attempt
                    if await host.start_and_kill_during_recovery(fraction):
                        break
            if host.process is None or host.process.poll() is not None:
                await host.start()
            await asyncio.gather(*drivers)
    finally:
        host.stop()  # also when the run is interrupted: no host left behind
    store = AzureStore(connection_string, task_hub)
    try:
        broken, raced = await check(store, planned)
    finally:
        await store.close()
    # What each client did and saw, next to the host's log, for a run that needs a look.
    (logs / f"{task_hub}.workflows.json").write_text(
        json.dumps([asdict(workflow) for workflow in planned], indent=1, default=str)
    )
    return RunResult(
        seed=seed,
        task_hub=task_hub,
        storage_prefix=prefix,
        workflows=dict(Counter(workflow.kind for workflow in planned)),
        kills=len(host.kills),
        kills_during_recovery=sum(kill.during_recovery for kill in host.kills),
        acknowledged_starts=sum(workflow.started for workflow in planned),
        acknowledged_events=sum(len(workflow.events) for workflow in planned),
        events_as_it_ended=len(raced),
        ended=sum(workflow.finished for workflow in planned),
        seconds=round(time.monotonic() - began, 1),
        recovery_seconds=[round(s, 2) for s in host.recovery_seconds],
        stats=asdict(stats),
        broken=broken,
    )


def print_summary(results: list[RunResult]) -> None:
    header = (
        f"{'run':>3} {'seed':>6} {'wf':>4} {'kills':>5} {'in rec':>6} {'starts':>6} "
        f"{'events':>6} {'at end':>6} {'ended':>5} {'lost ans':>8} {'5xx':>4} {'secs':>6}  "
        "invariants"
    )
    print(header)
    print("-" * len(header))
    for number, r in enumerate(results, 1):
        broken = [name for name in INVARIANTS if r.broken.get(name)]
        verdict = "all held" if r.held else "BROKEN: " + "; ".join(broken or ["5xx answers"])
        print(
            f"{number:>3} {r.seed:>6} {sum(r.workflows.values()):>4} {r.kills:>5} "
            f"{r.kills_during_recovery:>6} {r.acknowledged_starts:>6} {r.acknowledged_events:>6} "
            f"{r.events_as_it_ended:>6} {r.ended:>5} {r.stats['lost']:>8} "
            f"{len(r.stats['server_errors']):>4} "
            f"{r.seconds:>6}  {verdict}"
        )
    print(
        "\nwf: workflows; in rec: kills during recovery; starts, events: acknowledged (2xx); "
        "at end: events acknowledged as their instance ended (dropped, as on Azure); "
        "ended: workflows their client saw end; lost ans: requests whose answer a kill took"
    )
    print()
    print(f"{'invariant':<42} held in")
    for name in INVARIANTS:
        held = sum(not r.broken.get(name) for r in results)
        print(f"{name:<42} {held}/{len(results)} runs")
    for r in results:
        for name, problems in r.broken.items():
            for problem in problems[:10]:
                print(f"  seed {r.seed}: {name}: {problem}")
        for problem in r.stats["server_errors"][:10]:
            print(f"  seed {r.seed}: 5xx: {problem}")


async def main_async(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="devhost-chaos-"))
    azurite: AzuriteProcess | None = None
    connection_string = args.connection_string
    if connection_string is None:
        blob, queue, table = free_ports(3)
        azurite = start_azurite(ROOT, workdir / "azurite", (blob, queue, table))
        connection_string = azurite.connection_string
    results: list[RunResult] = []
    try:
        for number in range(args.runs):
            seed = args.seed + number
            print(f"run {number + 1}/{args.runs} (seed {seed})...", file=sys.stderr, flush=True)
            result = await run_once(
                connection_string, seed, args.workflows, args.kills, args.deadline, workdir
            )
            results.append(result)
            broken = [name for name, found in result.broken.items() if found]
            print(
                f"  {'held' if result.held else 'BROKEN'} in {result.seconds} s, "
                f"{result.kills} kills ({result.kills_during_recovery} during recovery)"
                + (f": {'; '.join(broken)}" if broken else ""),
                file=sys.stderr,
                flush=True,
            )
            if args.json:  # after every run, so a long form cut short keeps what it measured
                Path(args.json).write_text(
                    json.dumps([{**asdict(r), "held": r.held} for r in results], indent=2)
                )
    finally:
        if azurite is not None:
            azurite.stop()
    print_summary(results)
    if all(r.held for r in results):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"host logs kept in {workdir}", file=sys.stderr)
    return 0 if all(r.held for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="consecutive runs (default 1)")
    parser.add_argument("--workflows", type=int, default=100, help="per run (default 100)")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per run (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first run")
    parser.add_argument(
        "--deadline", type=float, default=300, help="seconds the workflows get to finish"
    )
    parser.add_argument("--connection-string", help="storage to use instead of a new Azurite")
    parser.add_argument("--json", help="also write the results to this file")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
