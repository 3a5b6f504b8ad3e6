"""Start and stop Azurite, the Azure Storage emulator, for the command line and the tests.

Azurite is a Node package pinned in ``package.json`` (``npm ci`` installs it under
``node_modules``). The local host starts it when the connection string is
``UseDevelopmentStorage=true`` and nothing listens on the emulator's ports yet; the tests
start a private one on free ports so they never touch a developer's running emulator.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from devhost.store.azure_layout import development_storage_connection_string, is_development_storage

__all__ = [
    "AzuriteError",
    "AzuriteProcess",
    "is_development_storage",
    "ports_listening",
    "start_azurite",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORTS = (10000, 10001, 10002)
MIN_NODE_MAJOR = 18
_KEEP_ALIVE_SECONDS = 60

_INSTALL_HINT = (
    "Azurite needs Node.js {min_node}+ and the project's Node packages: install Node.js "
    "(e.g. 'apt-get install nodejs npm' or https://nodejs.org), then run 'npm ci' in {project} "
    "(or './dev setup')."
)


class AzuriteError(RuntimeError):
    """Azurite is missing, could not start, or stopped while starting."""


def ports_listening(host: str, ports: Iterable[int], timeout: float = 0.25) -> bool:
    """Whether every one of ``ports`` on ``host`` accepts a TCP connection.

    Parameters
    ----------
    host
        Address to probe, e.g. ``127.0.0.1``.
    ports
        The ports that must all accept a connection.
    timeout
        Seconds to wait for each connection.

    Returns
    -------
    bool
        True only if all ports accept.
    """
    for port in ports:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError:
            return False
    return True


@dataclass
class AzuriteProcess:
    """A running Azurite started by :func:`start_azurite`.

    Attributes
    ----------
    process
        The Node process.
    host
        Address the three services listen on.
    ports
        Blob, queue and table ports.
    log_path
        File receiving Azurite's output (errors only, it runs with ``--silent``).
    project_dir, data_dir
        Where the launcher and the data are (for :meth:`start` after :meth:`stop`).
    """

    process: subprocess.Popen[bytes]
    host: str
    ports: tuple[int, int, int]
    log_path: Path
    project_dir: Path
    data_dir: Path

    @property
    def connection_string(self) -> str:
        """An explicit connection string for this emulator's ports (well-known account)."""
        return development_storage_connection_string(self.host, self.ports)

    def start(self, timeout: float = 30.0) -> None:
        """Start Azurite again after :meth:`stop`: the same ports and the same data (a storage
        outage ends). Does nothing while it runs.

        Raises
        ------
        AzuriteError
            As :func:`start_azurite`, e.g. when another process took one of the ports.
        """
        if self.process.poll() is None:
            return
        restarted = start_azurite(
            self.project_dir, self.data_dir, self.ports, host=self.host, timeout=timeout
        )
        self.process = restarted.process

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Azurite (terminate, then kill if it does not exit within ``timeout``); on
        terminate it writes its data to ``data_dir`` first, so a later :meth:`start` has it."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def _check_node(project_dir: Path) -> Path:
    """Return the Azurite launcher, or raise an error that says what to install."""
    hint = _INSTALL_HINT.format(min_node=MIN_NODE_MAJOR, project=project_dir)
    node = shutil.which("node")
    if node is None:
        raise AzuriteError(f"Node.js was not found on PATH. {hint}")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if match is None or int(match.group(1)) < MIN_NODE_MAJOR:
        raise AzuriteError(f"Node.js {version or '(unknown version)'} is too old. {hint}")
    launcher = project_dir / "node_modules" / ".bin" / "azurite"
    if not launcher.exists():
        raise AzuriteError(f"Azurite is not installed ({launcher} is missing). {hint}")
    return launcher


def _log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def start_azurite(
    project_dir: Path | str,
    data_dir: Path | str,
    ports: tuple[int, int, int] = DEFAULT_PORTS,
    *,
    host: str = DEFAULT_HOST,
    timeout: float = 30.0,
) -> AzuriteProcess:
    """Start Azurite and wait until its blob, queue and table ports accept connections.

    Parameters
    ----------
    project_dir
        The project root (holding ``node_modules/.bin/azurite``).
    data_dir
        Where Azurite keeps its data (created if missing); its output goes to
        ``azurite.log`` there.
    ports
        Blob, queue and table ports.
    host
        Address to listen on.
    timeout
        Seconds to wait for the ports.

    Returns
    -------
    AzuriteProcess
        The running emulator; call :meth:`AzuriteProcess.stop` when done.

    Raises
    ------
    AzuriteError
        Node or Azurite is missing, a port is taken, or Azurite exits or hangs while starting.
    """
    project = Path(project_dir).resolve()
    launcher = _check_node(project)
    if any(ports_listening(host, [port]) for port in ports):
        raise AzuriteError(
            f"A port of {ports} on {host} is already in use; stop whatever listens there "
            "or choose other ports."
        )
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    log_path = data / "azurite.log"
    blob_port, queue_port, table_port = ports
    # --skipApiVersionCheck: the pinned Python SDKs may speak a newer REST version than this
    # Azurite release knows; the operations we use exist in both.
    # Keep-alive: Azurite closes idle connections after 5 s, aiohttp keeps them for 15 s, and
    # a request sent on a connection the server is closing fails with "connection reset".
    # Outliving the client's idle timeout leaves the closing to the client.
    keep_alive = str(_KEEP_ALIVE_SECONDS)
    command = [
        str(launcher),
        "--silent",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--location",
        str(data),
        "--blobKeepAliveTimeout",
        keep_alive,
        "--queueKeepAliveTimeout",
        keep_alive,
        "--tableKeepAliveTimeout",
        keep_alive,
        "--blobHost",
        host,
        "--blobPort",
        str(blob_port),
        "--queueHost",
        host,
        "--queuePort",
        str(queue_port),
        "--tableHost",
        host,
        "--tablePort",
        str(table_port),
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    azurite = AzuriteProcess(
        process=process,
        host=host,
        ports=ports,
        log_path=log_path,
        project_dir=project,
        data_dir=data,
    )
    deadline = time.monotonic() + timeout
    while not ports_listening(host, ports):
        if process.poll() is not None:
            raise AzuriteError(
                f"Azurite exited with code {process.returncode} while starting "
                f"(log {log_path}):\n{_log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            azurite.stop()
            raise AzuriteError(
                f"Azurite did not listen on {host}:{ports} within {timeout:.0f} s "
                f"(log {log_path}):\n{_log_tail(log_path)}"
            )
        time.sleep(0.1)
    return azurite
