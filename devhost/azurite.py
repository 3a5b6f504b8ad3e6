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
from urllib.parse import urlsplit

from devhost.storage_settings import DEVSTORE_ACCOUNT_NAME, development_storage_connection_string
from devhost.store.azure_layout import is_development_storage

__all__ = [
    "AzuriteError",
    "AzuriteProcess",
    "azurite_project",
    "emulator_endpoint",
    "is_development_storage",
    "ports_listening",
    "start_azurite",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORTS = (10000, 10001, 10002)
MIN_NODE_MAJOR = 18
_KEEP_ALIVE_SECONDS = 60

_INSTALL_HINT = (
    "install Node.js {min_node}+ (e.g. 'apt-get install nodejs npm'), then run './dev setup' "
    "in devhost's repository (or 'npm ci' there, or 'npm install azurite' in {project})"
)
# Where devhost's own checkout keeps node_modules, for apps that have none of their own. An
# installed devhost has no checkout: the parent of its folder is site-packages.
DEVHOST_PROJECT = Path(__file__).resolve().parent.parent


class AzuriteError(RuntimeError):
    """Azurite is missing, could not start, or stopped while starting.

    The message is one sentence; ``log_tail`` holds the end of Azurite's log, if any.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


def azurite_project(app_dir: Path) -> Path:
    """The folder whose ``node_modules`` has Azurite: the app's own, else devhost's checkout;
    the app's when neither has it (so a missing Azurite is named where to install it)."""
    for project in (app_dir, DEVHOST_PROJECT):
        if (project / "node_modules" / ".bin" / "azurite").exists():
            return project
    return app_dir


def emulator_endpoint(connection_string: str) -> tuple[str, tuple[int, int, int]] | None:
    """The loopback address and ports of the Azurite a connection string names, if it does.

    ``UseDevelopmentStorage=true`` means the default ports; an explicit string for the
    well-known account with http endpoints on 127.0.0.1 or localhost names its own ports.
    """
    if is_development_storage(connection_string):
        return DEFAULT_HOST, DEFAULT_PORTS
    parts = {
        key.strip().lower(): value.strip()
        for key, _, value in (item.partition("=") for item in connection_string.split(";"))
    }
    if parts.get("accountname") != DEVSTORE_ACCOUNT_NAME:
        return None
    found: list[int] = []
    host = None
    for service in ("blobendpoint", "queueendpoint", "tableendpoint"):
        url = urlsplit(parts.get(service, ""))
        if url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost") or not url.port:
            return None
        host = url.hostname
        found.append(url.port)
    assert host is not None
    return ("127.0.0.1" if host == "localhost" else host), (found[0], found[1], found[2])


def free_ports(count: int = 3) -> tuple[int, ...]:
    """``count`` local ports nobody listens on right now (held open together, so they differ):
    a private Azurite's blob, queue and table ports, a host's HTTP port."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((DEFAULT_HOST, 0))
            sockets.append(sock)
        return tuple(int(sock.getsockname()[1]) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


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
    scheme
        ``https`` when started with ``tls``.
    project_dir, data_dir, tls, oauth
        How it was started, so that :meth:`start` after :meth:`stop` starts the same one.
    """

    process: subprocess.Popen[bytes]
    host: str
    ports: tuple[int, int, int]
    log_path: Path
    scheme: str = "http"
    # How it was started, for start() after stop().
    project_dir: Path | None = None
    data_dir: Path | None = None
    tls: tuple[Path, Path] | None = None
    oauth: bool = False

    @property
    def connection_string(self) -> str:
        """An explicit connection string for this emulator's ports (well-known account)."""
        return development_storage_connection_string(self.host, self.ports, self.scheme)

    def service_uri(self, service: str) -> str:
        """The URI of ``blob``, ``queue`` or ``table`` (path-style, with the account)."""
        port = self.ports[("blob", "queue", "table").index(service)]
        return f"{self.scheme}://{self.host}:{port}/{DEVSTORE_ACCOUNT_NAME}"

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
        assert self.project_dir is not None and self.data_dir is not None
        restarted = start_azurite(
            self.project_dir,
            self.data_dir,
            self.ports,
            host=self.host,
            timeout=timeout,
            tls=self.tls,
            oauth=self.oauth,
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
        raise AzuriteError(f"Node.js is not on PATH and Azurite needs it: {hint}.")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if match is None or int(match.group(1)) < MIN_NODE_MAJOR:
        raise AzuriteError(
            f"Node.js {version or '(unknown version)'} is too old for Azurite: {hint}."
        )
    launcher = project_dir / "node_modules" / ".bin" / "azurite"
    if not launcher.exists():
        raise AzuriteError(f"Azurite is not installed ({launcher} is missing): {hint}.")
    return launcher


def _log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _last_error(tail: str) -> str:
    """The line of Azurite's log that says what went wrong (its last non-blank one)."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else "it wrote nothing to its log"


def start_azurite(
    project_dir: Path | str,
    data_dir: Path | str,
    ports: tuple[int, int, int] = DEFAULT_PORTS,
    *,
    host: str = DEFAULT_HOST,
    timeout: float = 30.0,
    tls: tuple[Path, Path] | None = None,
    oauth: bool = False,
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
    tls
        A PEM certificate and key: serve HTTPS.
    oauth
        Check bearer tokens (``--oauth basic``: audience, issuer, lifetime); needs ``tls``.

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
    taken = [port for port in ports if ports_listening(host, [port])]
    if taken:
        raise AzuriteError(
            f"Azurite cannot start: port {taken[0]} on {host} is already in use by another "
            "program; stop it, or point the storage setting at other ports."
        )
    data = Path(data_dir)
    log_path = data / "azurite.log"
    try:
        data.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # closed once Azurite holds it, below
    except OSError as exc:
        raise AzuriteError(
            f"Azurite cannot keep its data in {data} ({exc.strerror or exc}): make it a "
            "writable folder."
        ) from exc
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
    if tls is not None:
        command += ["--cert", str(tls[0]), "--key", str(tls[1])]
    if oauth:
        command += ["--oauth", "basic"]
    with log:
        process = subprocess.Popen(
            command,
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    scheme = "https" if tls is not None else "http"
    azurite = AzuriteProcess(process, host, ports, log_path, scheme, project, data, tls, oauth)
    deadline = time.monotonic() + timeout
    while not ports_listening(host, ports):
        if process.poll() is not None:
            tail = _log_tail(log_path)
            raise AzuriteError(
                f"Azurite exited with code {process.returncode} while starting "
                f"({_last_error(tail)}); its log is {log_path}.",
                tail,
            )
        if time.monotonic() > deadline:
            azurite.stop()
            tail = _log_tail(log_path)
            raise AzuriteError(
                f"Azurite did not listen on {host}:{ports} within {timeout:.0f} s "
                f"({_last_error(tail)}); its log is {log_path}.",
                tail,
            )
        time.sleep(0.1)
    return azurite
