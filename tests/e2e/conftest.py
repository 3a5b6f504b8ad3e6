"""End-to-end fixtures: the local host as a real process (``python -m devhost start``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HostProcess:
    """A running ``python -m devhost start``; ``kill()`` is kill -9, ``restart()`` starts again."""

    def __init__(
        self,
        app_dir: Path,
        storage: dict[str, str] | str,
        task_hub: str | None,
        env: dict[str, str],
        args: tuple[str, ...] = (),
    ):
        self.app_dir = app_dir
        self.args = args
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.task_hub = task_hub
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.lower().startswith("azurewebjobsstorage")
        }
        if isinstance(storage, str):  # a connection string
            storage = {"AzureWebJobsStorage": storage}
        self.env = {**inherited, **env, **storage}
        self.log_path = Path(env["DEVHOST_TEST_LOG"])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devhost",
                "start",
                "--app",
                str(self.app_dir),
                "--port",
                str(self.port),
                "--no-azurite",
                *(["--task-hub", self.task_hub] if self.task_hub else []),
                *self.args,
            ],
            cwd=PROJECT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"host exited: {self.log_path.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(
                    f"{self.base_url}/runtime/webhooks/durabletask/instances?top=1", timeout=1
                )
                return
            except urllib.error.HTTPError:
                return  # it answers (401 when it enforces keys): it is up
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"host did not start: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def host_factory(storage_path, task_hub, tmp_path) -> Iterator:  # type: ignore[no-untyped-def]
    """Build hosts for an app folder on the test's storage (the session's Azurite with its key,
    or the OAuth Azurite with a token) and this test's task hub."""
    hosts: list[HostProcess] = []

    def make(app_dir: Path, *, hub_from_app: bool = False, **env: str) -> HostProcess:
        """A started host; ``hub_from_app`` leaves the task hub to the app's settings."""
        env.setdefault("DEVHOST_TEST_LOG", str(tmp_path / "host.log"))
        hub = None if hub_from_app else task_hub
        host = HostProcess(app_dir, storage_path.env, hub, env)
        hosts.append(host)
        host.start()
        return host

    yield make
    for host in hosts:
        host.stop()
