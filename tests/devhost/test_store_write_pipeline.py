"""The store's lean write pipeline leaves the table clients' own pipelines whole."""

from __future__ import annotations

from typing import Any

from devhost.store.azure import AzureStore


def chain(first: Any) -> list[str]:
    """The policies a request passes through, in order, following each one's ``next``."""
    names = []
    node = first
    while node is not None:
        names.append(type(getattr(node, "_policy", node)).__name__)
        node = getattr(node, "next", None)
    return names


def test_the_table_clients_keep_every_policy_after_the_write_pipelines_are_built() -> None:
    """A pipeline chains its policies by setting their ``next``: sharing one policy object
    with the write pipeline rewired the client's, whose SDK calls then skipped response
    decoding (create_table failed on identity-based storage)."""
    store = AzureStore("UseDevelopmentStorage=true", "hubpipeline")
    for client in (store._instances, store._history):
        pipeline = client._client._client._pipeline
        policies = [type(getattr(p, "_policy", p)).__name__ for p in pipeline._impl_policies]
        assert chain(pipeline._impl_policies[0]) == [*policies, "_AsyncTransportRunner"]
        assert "ContentDecodePolicy" in policies and "HttpLoggingPolicy" in policies


def test_the_write_pipelines_authenticate_retry_and_count_requests() -> None:
    store = AzureStore("UseDevelopmentStorage=true", "hubpipeline")
    for writes in (store._instance_writes, store._history_writes):
        assert writes is not None
        names = chain(writes._impl_policies[0])
        assert names == [
            "StorageHeadersPolicy",
            "ProxyPolicy",
            "SharedKeyCredentialPolicy",
            "StorageHosts",
            "AsyncTablesRetryPolicy",
            "CustomHookPolicy",
            "_AsyncTransportRunner",
        ]
