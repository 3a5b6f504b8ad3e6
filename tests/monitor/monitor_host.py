"""The local host as a process serving the monitor, for the monitor's tests."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from tests.e2e.conftest import HostProcess

PROJECT = Path(__file__).resolve().parents[2]


class MonitoredHost(HostProcess):
    """``python -m devhost start`` on Azurite with a fresh hub and fresh app tables; it knows
    the monitor's URL from the start banner."""

    def __init__(self, connection_string: str, log_path: Path) -> None:
        self.prefix = f"M{uuid.uuid4().hex[:8]}"
        super().__init__(
            PROJECT,
            connection_string,
            f"Mon{uuid.uuid4().hex[:12]}",
            {"WORKFLOW_STORAGE_PREFIX": self.prefix, "DEVHOST_TEST_LOG": str(log_path)},
        )
        self.monitor_url = ""

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = re.search(r"^Monitor: (\S+)$", self.log_path.read_text(), re.MULTILINE)
            if match:
                self.monitor_url = match.group(1)
                return
            time.sleep(0.05)
        raise RuntimeError(f"no Monitor line in the banner: {self.log_path.read_text()[-3000:]}")
