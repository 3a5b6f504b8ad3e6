"""Fixtures of the document tests: the document blueprints on an in-process host, on Azurite."""

from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from blueprints import events, http_starter
from blueprints.documents import activities, http_commands, http_documents, orchestrator
from blueprints.notifications import activities as notification_activities
from blueprints.notifications import http as notification_http
from devhost.app.loader import FunctionIndex, index_app
from devhost.testing import DurableTestHost


def documents_index() -> FunctionIndex:
    """The document workflow with the generic starter, event route and notification outbox."""
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    for module in (
        orchestrator,
        activities,
        http_documents,
        http_commands,
        notification_activities,
        notification_http,
        events,
        http_starter,
    ):
        app.register_functions(module.bp)
    return index_app(app)


@pytest.fixture
def durable_host_options() -> dict[str, Any]:
    """The plugin's hosts in these tests run the document workflow's own app."""
    return {"index": documents_index()}


@pytest.fixture
async def host(app_storage: str, async_durable_host: DurableTestHost) -> DurableTestHost:
    """The document workflow on the plugin's host, its business data on Azurite."""
    return async_durable_host


@pytest.fixture
async def http(host: DurableTestHost) -> Any:
    """An HTTP client for the app's routes, served in-process by ``host``."""
    return await host.http()
