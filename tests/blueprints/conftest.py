"""Fixtures for the HTTP endpoint tests (the harness itself is in api_harness.py)."""

import pytest
from api_harness import Api, FakeDurableClient


@pytest.fixture
def client() -> FakeDurableClient:
    """A fresh in-memory durable client."""
    return FakeDurableClient()


@pytest.fixture
def api(client: FakeDurableClient) -> Api:
    """The HTTP API, backed by the ``client`` fixture."""
    return Api(client)
