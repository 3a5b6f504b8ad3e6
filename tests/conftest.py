"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.azurite import AzuriteError, AzuriteProcess, start_azurite

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _free_ports(count: int) -> tuple[int, ...]:
    """Ports nobody listens on right now (all held open together, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return tuple(sock.getsockname()[1] for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="session")
def project_dir() -> Path:
    """The project root (holds ``node_modules``)."""
    return PROJECT_DIR


@pytest.fixture
def free_ports() -> tuple[int, int, int]:
    """Three ports nobody listens on (blob, queue, table)."""
    blob, queue, table = _free_ports(3)
    return blob, queue, table


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteProcess]:
    """A private Azurite on free ports with a temporary data directory, for the session.

    Its ``connection_string`` has explicit endpoints for those ports, so the tests never touch
    an Azurite a developer runs on the default ports.
    """
    attempts = 3
    for attempt in range(attempts):
        blob, queue, table = _free_ports(3)
        try:
            process = start_azurite(
                PROJECT_DIR, tmp_path_factory.mktemp("azurite"), (blob, queue, table)
            )
            break
        except AzuriteError:
            # Another process may take a port between choosing and binding it: try new ones.
            if attempt == attempts - 1:
                raise
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def app_storage(azurite: AzuriteProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the app's own storage (``blueprints.app_storage``) at the session's Azurite.

    Sets ``AzureWebJobsStorage`` and a fresh ``WORKFLOW_STORAGE_PREFIX``, so each test sees
    empty business tables and containers; yields the prefix.
    """
    from blueprints import app_storage as storage

    prefix = f"T{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(storage.STORAGE_SETTING, azurite.connection_string)
    monkeypatch.setenv(storage.PREFIX_SETTING, prefix)
    storage.reset_clients()
    yield prefix
    storage.reset_clients()


@pytest.fixture
def task_hub() -> str:
    """A fresh task hub name: letters and digits, starting with a letter, under 45 chars."""
    return f"Test{uuid.uuid4().hex[:16]}"
