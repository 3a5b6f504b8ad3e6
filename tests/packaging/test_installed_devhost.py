"""devhost installed on its own, used by an app that is not this one.

A throwaway app is made from ``sample_app/`` (written the way the SDK's samples are: a
blueprint registered on a ``DFApp``, activities, a 30-day durable timer raced against an
external event), devhost is installed from a copy of ``devhost/`` into a fresh virtual
environment (pip takes its pinned dependencies from PyPI, or its cache), and then, inside that
environment only: the app's own tests run with the plugin's fixtures, and ``devhost start``
serves the app over HTTP. About a minute on a quiet machine with a warm pip cache;
``-m 'not packaging'`` leaves it out.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import AzuriteProcess
from tests.waiting import eventually_sync

pytestmark = pytest.mark.packaging

PROJECT_DIR = Path(__file__).resolve().parents[2]
SAMPLE_APP = Path(__file__).resolve().parent / "sample_app"
# What `pip install ./devhost` leaves in the folder, and caches: never part of the copy.
_NOT_SOURCE = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")


@dataclass
class Installed:
    """A fresh virtual environment with devhost installed, and a copy of the sample app."""

    bin: Path
    app: Path

    def run(self, *command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / command[0]), *command[1:]],
            cwd=self.app,
            env=_outside_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _outside_env() -> dict[str, str]:
    """This process's environment without what would let the outside app see this project:
    its virtual environment, its import path, its storage settings."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
        and not name.lower().startswith("azurewebjobsstorage")
        and not name.startswith("PYTEST_")
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """devhost, with its pytest extra, installed from a copy of ``devhost/`` (so nothing
    outside that folder can leak into the package) into a new virtual environment."""
    root = tmp_path_factory.mktemp("outside")
    source = root / "devhost-source"
    shutil.copytree(PROJECT_DIR / "devhost", source, ignore=_NOT_SOURCE)
    app = root / "sample-app"
    shutil.copytree(SAMPLE_APP, app, ignore=_NOT_SOURCE)
    environment = root / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    bin_dir = environment / ("Scripts" if sys.platform == "win32" else "bin")
    result = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", f"{source}[pytest]"],
        env=_outside_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
    return Installed(bin_dir, app)


def test_the_package_holds_devhost_alone(installed: Installed) -> None:
    """The command is on the PATH of the environment; the library imports without this
    project's files (no storage_settings, no blueprints) and carries the monitor's page."""
    probe = (
        "import importlib.util, json, devhost.cli, devhost.monitor.server, devhost.pytest_plugin;"
        "from importlib.resources import files;"
        "page = files('devhost.monitor') / 'static' / 'index.html';"
        "print(json.dumps({'app_module': importlib.util.find_spec('storage_settings') is None,"
        " 'blueprints': importlib.util.find_spec('blueprints') is None,"
        " 'page': page.is_file(), 'where': devhost.cli.__file__}))"
    )
    result = installed.run("python", "-c", probe, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    usage = installed.run("devhost", "--help", timeout=60)

    assert found["app_module"] and found["blueprints"] and found["page"], found
    assert str(PROJECT_DIR) not in found["where"]
    assert usage.returncode == 0 and all(
        command in usage.stdout for command in ("start", "replay", "keys", "monitor")
    ), usage.stdout + usage.stderr


def test_the_apps_own_tests_run_with_the_fixtures(installed: Installed) -> None:
    """pytest in the app's folder: the plugin loads the app from its rootdir, runs the
    orchestrations through the real SDK, skips the 30-day timer on the virtual clock, replaces
    an activity by name, and serves the async fixture too."""
    result = installed.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", timeout=600)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout, result.stdout


def test_a_timed_out_wait_shows_the_history(installed: Installed) -> None:
    """A test waiting for an instance stuck on its event fails with the history in the
    message: the step it is stuck on is named."""
    stuck = installed.app / "tests" / "test_stuck.py"
    stuck.write_text(
        "import pytest\n\n\n"
        '@pytest.mark.durable_host(virtual_time="manual")\n'
        "def test_waits_for_an_approval_nobody_sends(durable_host):\n"
        '    durable_host.run("approval_orchestrator", timeout=0.5)\n'
    )
    try:
        result = installed.run(
            "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(stuck), timeout=300
        )
    finally:
        stuck.unlink()

    assert result.returncode == 1, result.stdout + result.stderr
    assert "is still Running after 0.5 s" in result.stdout, result.stdout
    assert "EventRaised" not in result.stdout
    assert "TimerCreated" in result.stdout and "ExecutionStarted" in result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(installed: Installed, azurite: AzuriteProcess) -> Iterator[str]:
    """``devhost start`` of the installed package serving the sample app, on this session's
    Azurite (named in the app's local.settings.json, as a user would); yields its base URL."""
    settings = installed.app / "local.settings.json"
    settings.write_text(
        json.dumps(
            {
                "IsEncrypted": False,
                "Values": {
                    "AzureWebJobsStorage": azurite.connection_string,
                    "FUNCTIONS_WORKER_RUNTIME": "python",
                },
            }
        )
    )
    port = _free_port()
    process = subprocess.Popen(
        [str(installed.bin / "devhost"), "start", "--port", str(port), "--no-azurite"],
        cwd=installed.app,
        env=_outside_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()

    def serving() -> bool:
        while not lines.empty():
            output.append(lines.get())
        if process.poll() is not None:
            raise AssertionError(f"devhost start exited:\n{''.join(output)}")
        return any("Serving." in line for line in output)

    try:
        eventually_sync(serving, "devhost start to serve the app")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        settings.unlink()


def _request(url: str, method: str = "GET") -> tuple[int, Any]:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as reply:
        return reply.status, json.loads(reply.read() or b"null")


def test_devhost_start_serves_the_app(served: str) -> None:
    """The sample's HTTP starter starts an orchestration; its status URL reports it done."""
    code, started = _request(f"{served}/api/orchestrators/hello_orchestrator", "POST")

    assert code == 202
    status_url = started["statusQueryGetUri"]

    def completed() -> Any:
        _, status = _request(status_url)
        return status if status["runtimeStatus"] == "Completed" else None

    status = eventually_sync(completed, "the orchestration to complete")
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
