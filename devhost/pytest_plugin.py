"""devhost's pytest plugin: a durable host per test for any Durable Functions app.

Registered by the package (entry point ``pytest11``), so installing devhost is enough:

* ``durable_host``: a started host for plain ``def`` tests (blocking calls; the engine runs on
  its own thread), a :class:`~devhost.blocking_host.BlockingDurableHost`;
* ``async_durable_host``: the same for ``async def`` tests, a
  :class:`~devhost.testing.DurableTestHost` (needs pytest-asyncio: ``durable-devhost[pytest]``).

Each test gets a fresh task hub on the in-memory store, the virtual clock (durable timers fire
as soon as nothing else runs, so a 30-day timer takes milliseconds) and the app loaded from the
rootdir, or from the folder the ``durable_app_dir`` ini option or ``--durable-app-dir`` names.

* ``@pytest.mark.durable_host(virtual_time="manual", activity_overrides={...})`` passes
  options to this test's host (see :class:`~devhost.testing.DurableTestHost`); overriding the
  ``durable_host_options`` fixture sets them for a module or a folder.
* ``--durable-store=azurite`` (or the ini option ``durable_store``) runs every such test on Azure
  Storage instead, in a fresh task hub of an Azurite the session starts from the app's
  ``node_modules`` (or the account ``--durable-connection`` names);
  ``@pytest.mark.durable_store("azurite")`` does it for one test.
* A wait that times out fails with the instance's status and history in the message.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.blocking_host import BlockingDurableHost
from devhost.testing import DurableTestHost

STORES = ("memory", "azurite")
CONNECTION_VARIABLE = "DEVHOST_TEST_CONNECTION"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("devhost", "durable host fixtures (devhost)")
    group.addoption(
        "--durable-app-dir",
        help="folder holding the app's function_app.py (default: the durable_app_dir ini "
        "option, else the rootdir)",
    )
    group.addoption(
        "--durable-store",
        choices=STORES,
        help="where the durable_host fixtures keep state: memory (default) or azurite",
    )
    group.addoption(
        "--durable-connection",
        help="storage connection string for --durable-store=azurite (default: "
        f"${CONNECTION_VARIABLE}, else a private Azurite started for the session)",
    )
    parser.addini(
        "durable_app_dir", "folder holding function_app.py, relative to the rootdir", default=""
    )
    parser.addini("durable_store", "memory (default) or azurite", default="memory")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "durable_host(**options): options of this test's durable host (virtual_time, "
        "activity_overrides, checkpoint_interval, app_dir)",
    )
    config.addinivalue_line(
        "markers", "durable_store(name): keep this test's durable host state in memory or azurite"
    )


def durable_app_dir(config: pytest.Config) -> Path:
    """The app folder the fixtures load: the option, else the ini value, else the rootdir."""
    given = config.getoption("durable_app_dir") or config.getini("durable_app_dir")
    return (config.rootpath / given).resolve() if given else config.rootpath


def _store_name(request: pytest.FixtureRequest) -> str:
    marker = request.node.get_closest_marker("durable_store")
    name = (
        (marker.args[0] if marker and marker.args else None)
        or request.config.getoption("durable_store")
        or request.config.getini("durable_store")
    )
    if name not in STORES:
        raise pytest.UsageError(f"durable store {name!r}: use one of {', '.join(STORES)}")
    return str(name)


def durable_storage_connection(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The storage account of the tests that run on Azurite (override it to bring your own).

    ``--durable-connection``, else ``$DEVHOST_TEST_CONNECTION``, else a private Azurite on free
    ports with its data in a temporary folder, started once for the session from the app's
    ``node_modules`` (``npm install azurite``) and stopped at its end.
    """
    given = request.config.getoption("durable_connection") or os.environ.get(CONNECTION_VARIABLE)
    if given:
        yield given
        return
    from devhost.azurite import AzuriteError, azurite_project, free_ports, start_azurite

    project = azurite_project(durable_app_dir(request.config))
    folder = tmp_path_factory.mktemp("azurite")
    attempts = 3
    for attempt in range(attempts):
        try:
            blob, queue, table = free_ports(3)
            process = start_azurite(project, folder, (blob, queue, table))
            break
        except AzuriteError:
            # Another process may take a port between choosing and binding it: try new ones.
            if attempt == attempts - 1:
                raise
    try:
        yield process.connection_string
    finally:
        process.stop()


@pytest.fixture
def durable_host_options() -> dict[str, Any]:
    """Options of every durable host in its scope; override it in a conftest.py or a module
    (e.g. ``{"index": index_app(my_app)}`` for a test's own app). A test's
    ``durable_host`` marker adds to them."""
    return {}


def new_durable_host(request: pytest.FixtureRequest) -> DurableTestHost:
    """This test's host (not started): the options (``durable_host_options``, then the
    marker's), its store, a fresh task hub."""
    marker = request.node.get_closest_marker("durable_host")
    options: dict[str, Any] = {
        **request.getfixturevalue("durable_host_options"),
        **(marker.kwargs if marker else {}),
    }
    app_dir = options.pop("app_dir", None) or durable_app_dir(request.config)
    task_hub = options.pop("task_hub", None) or "Test" + uuid.uuid4().hex[:16]
    if "store" not in options and "index" not in options and _store_name(request) == "azurite":
        from devhost.store.azure import AzureStore

        connection = request.getfixturevalue("durable_storage_connection")
        options["store"] = AzureStore(connection, task_hub)
    return DurableTestHost(app_dir, task_hub=task_hub, **options)


@pytest.fixture
def durable_host(request: pytest.FixtureRequest) -> Iterator[BlockingDurableHost]:
    """A started host for this test, with blocking methods (``host.run("hello", ...)``)."""
    with BlockingDurableHost(lambda: new_durable_host(request)) as host:
        yield host


try:
    import pytest_asyncio
except ImportError:  # the plugin still loads; only the async fixture needs pytest-asyncio

    @pytest.fixture
    def async_durable_host() -> DurableTestHost:
        """Needs pytest-asyncio."""
        pytest.fail(
            "async_durable_host needs pytest-asyncio: pip install 'durable-devhost[pytest]' "
            "(or use the durable_host fixture in a plain def test)",
            pytrace=False,
        )

else:

    @pytest_asyncio.fixture
    async def async_durable_host(  # type: ignore[misc]
        request: pytest.FixtureRequest,
    ) -> AsyncIterator[DurableTestHost]:
        """A started host for this ``async def`` test (``await host.run("hello", ...)``)."""
        async with new_durable_host(request) as host:
            yield host
