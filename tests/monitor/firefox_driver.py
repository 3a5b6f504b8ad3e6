"""Debian's Firefox ESR for the monitor's tests: one browser session per test module, driven by
Puppeteer over WebDriver BiDi in a Node process (``firefox_session.mjs`` says why not Playwright).

The Node process runs one named check per request (the checks the Chromium tests make, written
for Puppeteer) and answers with what failed, what the page logged as errors and every URL it
asked for; the tests assert on those.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

PROJECT = Path(__file__).resolve().parents[2]
SESSION_SCRIPT = Path(__file__).with_name("firefox_session.mjs")
LAUNCH_TIMEOUT_S = 90.0
# A check waits at most 20 s per step in the page; a whole check has a few dozen steps.
CHECK_TIMEOUT_S = 240.0
# Firefox ESR 140 lacks emulation.setScreenOrientationOverride (Puppeteer sends it to size the
# page) and its BiDi evaluations obey the page's CSP, which forbids eval; ESR 153 has neither gap.
OLDEST_FIREFOX = 153


def firefox_major(executable: Path) -> int:
    """The major version of the Firefox at ``executable`` (``Mozilla Firefox 153.8.0esr``)."""
    shown = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    match = re.search(r"Firefox (\d+)\.", shown)
    if match is None:
        raise RuntimeError(f"cannot read the version of {executable}: {shown!r}")
    return int(match.group(1))


class FirefoxSession:
    """A Node process holding one Firefox session; ``check`` runs one named check in a new tab."""

    def __init__(self, executable: Path, log_path: Path) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed: ./dev setup needs it")
        if not (PROJECT / "node_modules" / "puppeteer-core").is_dir():
            raise RuntimeError("puppeteer-core is not installed: run ./dev setup")
        self.log_path = log_path
        self._log = log_path.open("wb")
        self._process = subprocess.Popen(
            [node, str(SESSION_SCRIPT), str(executable)],
            cwd=PROJECT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        # After a check timed out its late answer would be read as the next one's.
        self._broken = ""
        assert self._process.stdout is not None
        threading.Thread(target=self._pump, args=(self._process.stdout,), daemon=True).start()
        try:
            self.version = str(self._read(LAUNCH_TIMEOUT_S, "Firefox to start")["version"])
        except BaseException:
            self.close()
            raise

    def _pump(self, stdout: IO[bytes]) -> None:
        # A thread, because a pipe read cannot be bounded by time on its own.
        for line in stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def _read(self, timeout_s: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self._broken = f"no answer from Firefox after {timeout_s:.0f} s: {what}"
            raise RuntimeError(self._broken) from None
        if not line:
            raise RuntimeError(f"the Firefox session ended, waiting for {what}: {self._tail()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def check(self, name: str, **job: Any) -> dict[str, Any]:
        """Run the named check of ``firefox_session.mjs`` and return its answer."""
        assert self._process.stdin is not None
        if self._broken:
            raise RuntimeError(f"the Firefox session is unusable: {self._broken}")
        if self._process.poll() is not None:
            raise RuntimeError(f"the Firefox session has ended: {self._tail()}")
        self._process.stdin.write(json.dumps({"check": name, **job}).encode() + b"\n")
        self._process.stdin.flush()
        return self._read(CHECK_TIMEOUT_S, f"the {name} check")

    def close(self) -> None:
        """End the session: Node closes Firefox when its input ends."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # SIGTERM first: Puppeteer's handler then ends the Firefox it started.
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._log.close()
