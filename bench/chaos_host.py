"""The host under test for the chaos run: ``python -m devhost start`` as a real process, killed
with SIGKILL at chosen instants (during recovery too) and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from devhost.azurite import free_ports

ROOT = Path(__file__).resolve().parents[1]

# Printed by the host (devhost.cli) before it recovers, and once it serves.
RECOVERING = "recovering unfinished work"
SERVING = "Serving."


@dataclass
class Kill:
    """One SIGKILL: when (seconds into the run) and whether it landed during recovery."""

    at: float
    during_recovery: bool


@dataclass
class ChaosHost:
    """One task hub's host process; each start appends to the same log file.

    Attributes
    ----------
    kills
        Every SIGKILL sent, in order.
    recovery_seconds
        How long each completed start spent between "recovering" and serving.
    """

    connection_string: str
    task_hub: str
    log_path: Path
    env: dict[str, str]
    port: int = field(default_factory=lambda: free_ports(1)[0])
    kills: list[Kill] = field(default_factory=list)
    recovery_seconds: list[float] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    process: subprocess.Popen[bytes] | None = None
    _log_offset: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        """Start the process (not waiting for it to serve)."""
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devhost",
                    "start",
                    "--app",
                    str(ROOT),
                    "--port",
                    str(self.port),
                    "--no-azurite",
                    "--task-hub",
                    self.task_hub,
                ],
                cwd=ROOT,
                env={**os.environ, **self.env, "AzureWebJobsStorage": self.connection_string},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def this_start_log(self) -> str:
        """What the current process has logged so far."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode("utf-8", "replace")

    async def _wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.this_start_log():
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"host exited:\n{self.this_start_log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"host did not log {text!r} in {timeout:.0f} s")
            await asyncio.sleep(0.02)

    async def start(self, timeout: float = 120.0) -> None:
        """Start the process and wait until it serves HTTP; record its recovery time."""
        self.spawn()
        await self._wait_for(RECOVERING, timeout)
        began = time.monotonic()
        await self._wait_for(SERVING, timeout)
        self.recovery_seconds.append(time.monotonic() - began)
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    async with session.get(
                        f"{self.base_url}/runtime/webhooks/durabletask/instances?top=1"
                    ) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("host serves no HTTP")
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the process now."""
        assert self.process is not None
        during_recovery = SERVING not in self.this_start_log()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.kills.append(Kill(time.monotonic() - self.started_at, during_recovery))

    async def start_and_kill_during_recovery(self, fraction: float) -> bool:
        """Start the process and SIGKILL it ``fraction`` of the way through its recovery
        (estimated from the last one); True if it had not served yet."""
        estimate = self.recovery_seconds[-1] if self.recovery_seconds else 0.5
        self.spawn()
        await self._wait_for(RECOVERING, 120)
        await asyncio.sleep(max(0.0, estimate * fraction))
        self.kill()
        return self.kills[-1].during_recovery

    def stop(self) -> None:
        """Stop gracefully (SIGINT: last checkpoint written), as an operator would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
