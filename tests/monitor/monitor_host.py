"""The local host as a process serving the monitor, for the monitor's tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MonitoredHost:
    """``python -m devhost start`` on the session's Azurite, with a fresh hub and tables."""

    def __init__(self, connection_string: str) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.task_hub = f"Mon{uuid.uuid4().hex[:12]}"
        self.prefix = f"M{uuid.uuid4().hex[:8]}"
        self.connection_string = connection_string
        self.log_path = Path(tempfile.gettempdir()) / f"devhost-{self.task_hub}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.monitor_url = ""

    def start(self) -> None:
        env = {
            **os.environ,
            "AzureWebJobsStorage": self.connection_string,
            "WORKFLOW_STORAGE_PREFIX": self.prefix,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devhost",
                "start",
                "--app",
                str(PROJECT),
                "--port",
                str(self.port),
                "--no-azurite",
                "--task-hub",
                self.task_hub,
            ],
            cwd=PROJECT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"host exited: {self.log_path.read_text()[-3000:]}")
            match = re.search(r"^Monitor: (\S+)$", self.log_path.read_text(), re.MULTILINE)
            if match:
                self.monitor_url = match.group(1)
                return
            time.sleep(0.1)
        raise RuntimeError(f"host did not start in 60 s: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
