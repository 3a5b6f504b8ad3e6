"""Instructions per HelloSequence5: a CPU measure that does not move with the machine's load.

Run: ``.venv/bin/python bench/instructions.py [--path test-host|azure] [--count 200]``. Needs
valgrind (``apt-get install valgrind``). Runs the workload twice under callgrind, once with no
measured orchestrations and once with ``--count``, each after the same warm-up, and prints the
difference divided by the count: the instructions this process spends on one HelloSequence5 at
100 in flight (start-up, warm-up and shutdown cancel out). Azurite, a child process, is not
counted.

Timings on this shared two-core machine drift by tens of percent within minutes (see
docs/benchmarks.md); an instruction count of the same work drifts by about 3 % on the test host
and 5 % on the Azure path (where the group commit's batches depend on timing). Compare two
commits by running this in each checkout; ``bench/run.py`` stays the measure of rates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WARM_UP = {"test-host": 250, "azure": 100}


async def _test_host(count: int) -> None:
    from bench.run import concurrently
    from devhost.app.loader import load_app
    from devhost.testing import DurableTestHost

    async with DurableTestHost(index=load_app(ROOT / "bench" / "app")) as host:

        async def one() -> float:
            status = await host.run("hello_sequence5", timeout=120)
            assert status["runtimeStatus"] == "Completed", status
            return 0.0

        await concurrently(one, WARM_UP["test-host"], 100)
        if count:
            await concurrently(one, count, 100)


async def _azure(count: int) -> None:
    from bench.run import bench_engine, throughput
    from devhost.app.loader import load_app
    from devhost.azurite import free_ports, start_azurite
    from devhost.engine.collector import tune_for_host
    from devhost.store.azure import AzureStore

    blob, queue, table = free_ports(3)
    azurite = start_azurite(
        ROOT, Path(tempfile.mkdtemp(prefix="bench-azurite-")), (blob, queue, table)
    )
    try:
        hub = "instr" + uuid.uuid4().hex[:8]
        tune_for_host()  # as ``devhost start`` does
        engine = bench_engine(
            load_app(ROOT / "bench" / "app"), AzureStore(azurite.connection_string, hub), hub
        )
        await engine.start()
        try:
            await throughput(engine, WARM_UP["azure"], 100)
            await engine.checkpoint()
            if count:
                await throughput(engine, count, 100)
                await engine.checkpoint()
        finally:
            await engine.stop()
    finally:
        azurite.stop()


def _instructions(path: str, count: int) -> int:
    """Instructions of one run of the workload under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--inner",
                "--path",
                path,
                "--count",
                str(count),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        assert found, "callgrind wrote no total"
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=sorted(WARM_UP), default="test-host")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        asyncio.run(_test_host(args.count) if args.path == "test-host" else _azure(args.count))
        return
    started = time.monotonic()
    empty = _instructions(args.path, 0)
    measured = _instructions(args.path, args.count)
    per_one = (measured - empty) / args.count
    print(
        f"{args.path}: {per_one / 1e6:.2f} M instructions per HelloSequence5 at 100 in flight "
        f"({measured:,} - {empty:,} over {args.count}; {time.monotonic() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
