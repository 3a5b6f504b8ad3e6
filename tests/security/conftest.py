"""The attacker's view: the app on the local host as a process, with ``--enforce-keys`` and
``WORKFLOW_AUTH=easyauth``, on the session's Azurite.

One host serves every test of this folder (each test uses its own IDs). Keys come from
``python -m devhost keys``, as a developer would get them. Principals are sent as App Service
Authentication would set them; the local host, unlike App Service, does not strip such headers
from callers, so here they stand for "the platform signed this person in".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devhost.azurite import AzuriteProcess
from tests.e2e.conftest import PROJECT, HostProcess
from tests.security.attacker import SecureHost, read_keys


@pytest.fixture(scope="session")
def secure_host(
    azurite: AzuriteProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureHost]:
    """The project's app on a host that enforces keys, with identities from principals."""
    log = tmp_path_factory.mktemp("security") / "host.log"
    env = {
        "WORKFLOW_AUTH": "easyauth",
        # Who may approve and resolve orders (test_attack_identity's orders).
        "ORDER_APPROVERS": "manager@example.com",
        "WORKFLOW_STORAGE_PREFIX": f"S{uuid.uuid4().hex[:8]}",
        "DEVHOST_TEST_LOG": str(log),
    }
    process = HostProcess(
        PROJECT,
        azurite.connection_string,
        f"Sec{uuid.uuid4().hex[:16]}",
        env,
        args=("--enforce-keys",),
    )
    process.env.pop("MONITOR_ALLOWED_HOSTS", None)
    keys = read_keys(process.env)
    process.start()
    try:
        yield SecureHost(process, keys)
    finally:
        process.stop()
