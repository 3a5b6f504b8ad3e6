"""The store's lean write pipeline leaves the table clients' own pipelines whole."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.pipeline import AsyncPipeline, PipelineContext, PipelineRequest
from azure.core.pipeline.policies import AsyncRetryPolicy, SansIOHTTPPolicy
from azure.core.pipeline.transport import AsyncHttpTransport, HttpRequest
from azure.data.tables._authentication import SharedKeyCredentialPolicy
from hypothesis import given, settings
from hypothesis import strategies as st

from devhost.store.azure import AzureStore, _chain_sans_io, _SharedKeySigning
from devhost.store.azure_layout import entity_address, sanitize_key


def chain(first: Any) -> list[str]:
    """The policies a request passes through, in order, following each one's ``next``."""
    names = []
    node = first
    while node is not None:
        inner = getattr(node, "policies", None) or [getattr(node, "_policy", node)]
        names.extend(type(policy).__name__ for policy in inner)
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
            "_SharedKeySigning",
            "StorageHosts",
            "AsyncTablesRetryPolicy",
            "CustomHookPolicy",
            "_AsyncTransportRunner",
        ]


class Recorder(SansIOHTTPPolicy[Any, Any]):
    """Records its steps; raises in the step named by ``fail``."""

    def __init__(self, name: str, log: list[str], fail: str = "") -> None:
        self.name, self.log, self.fail = name, log, fail

    def _step(self, step: str) -> None:
        self.log.append(f"{self.name}.{step}")
        if step == self.fail:
            raise RuntimeError(f"{self.name}.{step}")

    def on_request(self, request: Any) -> None:
        self._step("on_request")

    def on_response(self, request: Any, response: Any) -> None:
        self._step("on_response")

    def on_exception(self, request: Any) -> None:
        self._step("on_exception")


class Answering(AsyncHttpTransport):  # type: ignore[misc]
    def __init__(self, log: list[str], fail: bool) -> None:
        self.log, self.fail = log, fail

    async def send(self, request: Any, **kwargs: Any) -> Any:
        self.log.append("send")
        if self.fail:
            raise RuntimeError("send")
        return SimpleNamespace(status_code=204)

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def __aexit__(self, *args: Any) -> None: ...


async def run_through(chained: bool, failures: dict[str, str], send_fails: bool) -> list[str]:
    log: list[str] = []
    policies: list[Any] = [Recorder(name, log, failures.get(name, "")) for name in "abc"]
    pipeline: AsyncPipeline[Any, Any] = AsyncPipeline(
        transport=Answering(log, send_fails),
        policies=_chain_sans_io(policies) if chained else policies,
    )
    try:
        await pipeline.run(HttpRequest("PUT", "http://h/x"))
    except RuntimeError as error:
        log.append(f"raised {error}")
    return log


@pytest.mark.parametrize("send_fails", [False, True])
@pytest.mark.parametrize(
    "failures",
    [
        {},
        {"b": "on_request"},
        {"c": "on_response"},
        {"a": "on_response"},
        {"b": "on_exception"},
        {"b": "on_request", "a": "on_exception"},
        {"c": "on_response", "b": "on_exception"},
    ],
)
async def test_chained_sans_io_policies_run_their_steps_as_azure_cores_runners_do(
    failures: dict[str, str], send_fails: bool
) -> None:
    """The write pipeline runs its SansIO policies as one step (``_SansIOChain``): the same
    steps in the same order, a failure anywhere included, and the same exception out."""
    assert await run_through(True, failures, send_fails) == await run_through(
        False, failures, send_fails
    )


def test_only_plain_sans_io_policies_are_chained() -> None:
    class Awaiting(SansIOHTTPPolicy[Any, Any]):
        async def on_request(self, request: Any) -> None:  # type: ignore[override]
            return None

    log: list[str] = []
    first, second, awaiting = Recorder("a", log), Recorder("b", log), Awaiting()
    retry = AsyncRetryPolicy()
    chained = _chain_sans_io([first, second, retry, awaiting, first])

    assert [type(policy).__name__ for policy in chained] == [
        "_SansIOChain",
        "AsyncRetryPolicy",
        "Awaiting",
        "_SansIOChain",
    ]
    assert chained[0].policies == [first, second]


@settings(max_examples=300, deadline=None)
@given(
    instance_id=st.text(min_size=1, max_size=40),
    method=st.sampled_from(["PUT", "POST", "DELETE"]),
    content_type=st.sampled_from([None, "application/json", "multipart/mixed; boundary=b_1"]),
    batch=st.booleans(),
    repeat=st.integers(1, 3),
)
def test_the_write_pipelines_sign_as_the_sdk_signs(
    instance_id: str, method: str, content_type: str | None, batch: bool, repeat: int
) -> None:
    """The same Authorization header as the SDK's SharedKey policy, for any address the store
    writes to, whether the address was signed before (kept) or not."""
    store = AzureStore("UseDevelopmentStorage=true", "hubsigning")
    writes = store._instance_writes
    assert writes is not None
    signer = writes._impl_policies[0].policies[2]  # type: ignore[attr-defined]
    assert isinstance(signer, _SharedKeySigning)
    sdk = SharedKeyCredentialPolicy(signer._credential, is_emulated=signer.is_emulated)
    table = store._instances
    url = (
        f"{table.url}/$batch"
        if batch
        else entity_address(table.url, table.table_name, sanitize_key(instance_id), "")
    )
    for attempt in range(repeat):
        headers = {"x-ms-version": "2019-02-02", "x-ms-date": f"Tue, 0{attempt + 1} Dec 2026"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        signed = []
        for policy in (signer, sdk):
            request = HttpRequest(method, url, headers=dict(headers))
            policy.on_request(PipelineRequest(request, PipelineContext(writes._transport)))
            signed.append(request.headers["Authorization"])
        assert signed[0] == signed[1]
