"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import AzuriteError, AzuriteProcess, start_azurite
from devhost.azurite import free_ports as _free_ports  # the fixture below is free_ports
from devhost.storage_settings import STORAGE_CONNECTION
from tests.storage_identity import TokenIssuer, make_tls_files

PROJECT_DIR = Path(__file__).resolve().parent.parent

# No test may ask Azure's instance metadata service (169.254.169.254) for a token: a managed
# identity credential with no endpoint configured asks this closed loopback port instead.
os.environ.setdefault("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")

# The two ways the app and the host reach storage. Tests marked both_storage_paths run on each
# (WORKFLOW_TEST_STORAGE=both runs every test that uses the app's storage on each).
STORAGE_PATHS = ("connection-string", "identity")


@pytest.fixture(scope="session")
def project_dir() -> Path:
    """The project root (holds ``node_modules``)."""
    return PROJECT_DIR


@pytest.fixture
def free_ports() -> tuple[int, int, int]:
    """Three ports nobody listens on (blob, queue, table)."""
    blob, queue, table = _free_ports(3)
    return blob, queue, table


def _start_private_azurite(folder: Path, **options: Any) -> AzuriteProcess:
    """Azurite on free ports with its data in ``folder``, never a developer's default ports."""
    attempts = 3
    for attempt in range(attempts):
        try:
            return start_azurite(PROJECT_DIR, folder, _free_ports(3), **options)
        except AzuriteError:
            # Another process may take a port between choosing and binding it: try new ones.
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteProcess]:
    """A private Azurite on free ports with a temporary data directory, for the session.

    Its ``connection_string`` has explicit endpoints for those ports, so the tests never touch
    an Azurite a developer runs on the default ports.
    """
    process = _start_private_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def durable_storage_connection(azurite: AzuriteProcess) -> str:
    """The account of the durable_host fixtures on Azurite (``--durable-store=azurite``, or
    ``@pytest.mark.durable_store("azurite")``): the session's Azurite, not a second one."""
    return azurite.connection_string


@dataclass
class OAuthAzurite:
    """Azurite over HTTPS checking bearer tokens, the CA to trust, and the token issuer."""

    azurite: AzuriteProcess
    ca: Path
    issuer: TokenIssuer

    def settings(
        self, client_id: str | None = "8d3f1c52-0f43-4c57-9b47-6a6c0c1a2b3c"
    ) -> dict[str, str]:
        """Identity-based settings (no account key anywhere) as a Function App would have them,
        plus the managed-identity endpoint and the CA, for the app or a host process."""
        values = {
            STORAGE_CONNECTION: "",  # set, and empty, so no local.settings file can fill it
            **{
                f"{STORAGE_CONNECTION}__{service}ServiceUri": self.azurite.service_uri(service)
                for service in ("blob", "queue", "table")
            },
            f"{STORAGE_CONNECTION}__credential": "managedidentity",
            **self.issuer.environment(),
            # requests (the app's clients) reads this per request; aiohttp (the host's) reads
            # SSL_CERT_FILE once, when it is imported, so a host process is started with it.
            "REQUESTS_CA_BUNDLE": str(self.ca),
            "SSL_CERT_FILE": str(self.ca),
        }
        if client_id:
            values[f"{STORAGE_CONNECTION}__clientId"] = client_id
        return values


@pytest.fixture(scope="session")
def oauth_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthAzurite]:
    """A second private Azurite, started with ``--oauth basic`` over HTTPS with a certificate
    made for the session, and a managed-identity endpoint that issues tokens it accepts."""
    tls = make_tls_files(tmp_path_factory.mktemp("tls"))
    process = _start_private_azurite(
        tmp_path_factory.mktemp("azurite-oauth"), tls=(tls.cert, tls.key), oauth=True
    )
    issuer = TokenIssuer().start()
    try:
        yield OAuthAzurite(process, tls.ca, issuer)
    finally:
        issuer.stop()
        process.stop()


@dataclass
class StoragePath:
    """How a test's app (and host) reach storage: ``env`` holds the settings to apply."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    oauth: OAuthAzurite | None = None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "storage_path" not in metafunc.fixturenames:
        return
    if any(
        "storage_path" in mark.args[0] for mark in metafunc.definition.iter_markers("parametrize")
    ):
        return
    everywhere = os.environ.get("WORKFLOW_TEST_STORAGE", "").lower() == "both"
    if everywhere or metafunc.definition.get_closest_marker("both_storage_paths"):
        metafunc.parametrize("storage_path", STORAGE_PATHS, indirect=True)


@pytest.fixture
def storage_path(request: pytest.FixtureRequest) -> StoragePath:
    """The storage settings of this test: a connection string with the account key (the
    default), or identity-based settings reaching the OAuth Azurite with a token."""
    name = getattr(request, "param", "connection-string")
    if name == "identity":
        oauth: OAuthAzurite = request.getfixturevalue("oauth_azurite")
        return StoragePath(name, oauth.settings(), oauth)
    azurite: AzuriteProcess = request.getfixturevalue("azurite")
    return StoragePath(name, {STORAGE_CONNECTION: azurite.connection_string})


@pytest.fixture
def app_storage(storage_path: StoragePath, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the app's own storage (``blueprints.app_storage``) at the test's storage.

    Applies the storage settings (a connection string, or identity-based settings) and a fresh
    ``WORKFLOW_STORAGE_PREFIX``, so each test sees empty business tables and containers;
    yields the prefix.
    """
    from blueprints import app_storage as storage

    prefix = f"T{uuid.uuid4().hex[:8]}"
    for name in list(os.environ):
        if name.lower().startswith(f"{STORAGE_CONNECTION.lower()}__"):
            monkeypatch.delenv(name)
    for name, value in storage_path.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(storage.PREFIX_SETTING, prefix)
    storage.reset_clients()
    yield prefix
    storage.reset_clients()


@pytest.fixture
def task_hub() -> str:
    """A fresh task hub name: letters and digits, starting with a letter, under 45 chars."""
    return f"Test{uuid.uuid4().hex[:16]}"
