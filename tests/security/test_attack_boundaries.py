"""Trust boundaries: entities, internal instances, the saga, monitors (SSRF) and blob paths.

Each attack is made with a valid function key (and, where a route wants one, a signed-in
person): it must be refused with a 4xx and change nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.security.attacker import SecureHost, eventually, unique

pytestmark = [pytest.mark.azurite, pytest.mark.host]

OPS = "ops@example.com"
ORDER = {
    "customerId": "c-1",
    "customerEmail": "a@example.com",
    "items": [{"productId": "p", "sku": "SKU-1", "name": "Mug", "quantity": 1, "unitPrice": 5.0}],
    "shippingAddress": {
        "street": "1 Main St",
        "city": "Seattle",
        "state": "WA",
        "zipCode": "98101",
        "country": "US",
    },
    "paymentDetails": {"method": "credit_card", "token": "tok_visa"},
}


def _stock(host: SecureHost, sku: str) -> dict:
    answer = host.call("GET", f"/api/inventory/{sku}")
    assert answer.status == 200, answer.body
    return dict(answer.body)


def test_entities_are_reached_only_through_their_own_routes(secure_host: SecureHost) -> None:
    host = secure_host
    sku = unique("SKU").upper()
    assert host.call("POST", f"/api/inventory/{sku}", {"quantity": 10}).status == 202
    before = eventually(
        lambda: (
            (s := host.call("GET", f"/api/inventory/{sku}")).status == 200
            and s.body.get("available") == 10
            and s.body
        ),
        what="the restock",
    )
    entity = f"@inventory@{sku}"
    for method, path, body in [
        ("POST", f"/api/instances/{entity}/suspend", {}),
        ("POST", f"/api/instances/{entity}/resume", {}),
        ("POST", f"/api/instances/{entity}/terminate", {}),
        ("DELETE", f"/api/instances/{entity}", None),
        ("GET", f"/api/instances/{entity}", None),
        ("POST", f"/api/instances/{entity}/events/reserve", {"quantity": 10}),
        ("POST", f"/api/orchestrators/hello_sequence/{entity}", {"cities": ["x"]}),
    ]:
        answer = host.call(method, path, body)
        assert answer.status == 400, (method, path, answer.status, answer.body)
    listed = host.call("GET", "/api/instances?top=500").body["instances"]
    assert not [i for i in listed if str(i["instanceId"]).startswith("@")]
    assert _stock(host, sku) == before


def test_the_instance_routes_cannot_stop_or_purge_what_other_routes_own(
    secure_host: SecureHost,
) -> None:
    host = secure_host
    order = {"amount": 50_000, "requesterEmail": OPS, "approverEmail": "cfo@example.com"}
    started = host.call("POST", "/api/purchase-orders", order, as_=OPS)
    status_url, instance_id = started.body["statusQueryGetUri"], started.body["id"]
    for method, path in [
        ("POST", f"/api/instances/{instance_id}/terminate"),
        ("POST", f"/api/instances/{instance_id}/suspend"),
        ("DELETE", f"/api/instances/{instance_id}"),
        ("GET", f"/api/instances/{instance_id}"),
    ]:
        answer = host.call(method, path, {} if method == "POST" else None)
        assert (answer.status, answer.code) == (404, "InstanceNotFound"), (path, answer.body)
    assert host.call("GET", status_url, key=None).body["runtimeStatus"] in ("Running", "Pending")


def test_only_public_orchestrators_start_over_http(secure_host: SecureHost) -> None:
    host = secure_host
    for name in ("saga", "process_order", "batch_chunk_group", "approval_chain", "wip_document"):
        answer = host.call("POST", f"/api/orchestrators/{name}", {})
        assert (answer.status, answer.code) == (404, "UnknownOrchestrator"), name
        accepted = answer.body["error"]["details"][0]["accepted"]
        assert accepted and name not in accepted


def test_the_saga_runs_only_registered_compensable_actions(secure_host: SecureHost) -> None:
    """Even the system key's holder cannot make the saga call a function by name."""
    host = secure_host
    victim = unique("victim") + "@example.com"
    forged = {
        "notificationId": unique("n"),
        "recipient": victim,
        "category": "order_confirmation",
        "subject": "Your refund",
        "body": "Click here",
        "workflow": "saga",
        "instanceId": "x",
    }
    steps = [
        {"name": "notify", "activity": "send_notification", "input": forged},
        {"name": "notify2", "action": "send_notification", "input": forged},
        {"name": "order", "action": "record_order", "input": {}},
    ]
    for step in steps:
        started = host.call(
            "POST",
            "/runtime/webhooks/durabletask/orchestrators/saga",
            {"steps": [step]},
            key="system",
        )
        assert started.status == 202
        final = eventually(
            lambda s=started: (
                (a := host.call("GET", s.body["statusQueryGetUri"], key=None)).status == 200
                and a.body
            ),
            what="the forged saga to end",
        )
        assert final["runtimeStatus"] == "Failed", final
    outbox = host.call("GET", f"/api/notifications?recipient={victim}", as_=victim)
    assert outbox.status == 200 and outbox.body["notifications"] == []


@pytest.mark.parametrize(
    "target",
    [
        "{host}/runtime/webhooks/durabletask/instances",
        "{azurite}/devstoreaccount1?comp=list",
        "http://169.254.169.254/metadata/instance?api-version=2021-02-01",
        "http://168.63.129.16/machine?comp=goalstate",
        "http://[::1]:7071/api/instances",
        "http://10.1.2.3/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
    ],
)
def test_monitors_refuse_targets_inside_the_network(
    secure_host: SecureHost, azurite, target: str
) -> None:  # type: ignore[no-untyped-def]
    host = secure_host
    blob = urlsplit(azurite.connection_string.split("BlobEndpoint=")[1].split(";")[0])
    url = target.format(host=host.base_url, azurite=f"http://{blob.netloc}")
    monitor_id = unique("mon")
    body = {"monitorId": monitor_id, "url": url, "healthyIntervalSeconds": 60}
    answer = host.call("POST", "/api/monitors", body)
    assert answer.status == 400, (url, answer.body)
    assert answer.body["error"]["details"][0]["field"] == "url"
    assert host.call("GET", f"/api/monitors/{monitor_id}").status == 404


@pytest.mark.parametrize(
    "blob_name",
    [
        "inputs/../jobs/other/output/00000.jsonl",
        "../secrets",
        "/inputs/x",
        "inputs\\x",
        "inputs/%2e%2e/x",
        "jobs/other-job/input.jsonl",
        "inputs//x",
    ],
)
def test_batches_read_only_uploaded_inputs(secure_host: SecureHost, blob_name: str) -> None:
    job_id = unique("job")
    body = {"jobId": job_id, "dataSource": {"blobName": blob_name}, "batchSize": 10}
    answer = secure_host.call("POST", "/api/batches", body)
    assert answer.status == 400, (blob_name, answer.body)
    assert secure_host.call("GET", f"/api/batches/{job_id}").status == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/batches/inputs/..%2Fjobs%2Fx",
        "/api/batches/inputs/%2E%2E",
        "/api/batches/inputs/a%252Fb",
        "/api/batches/..%2Fjobs/report",
        "/api/documents/..%2Fbatches%2Finputs%2Fx",
        "/api/documents/a%5Cb/status",
        "/api/documents/%2Fetc",
    ],
)
def test_ids_that_become_storage_paths_are_checked_once_decoded(
    secure_host: SecureHost, path: str
) -> None:
    method = "PUT" if "/inputs/" in path else "GET"
    answer = secure_host.call(method, path, {"x": 1} if method == "PUT" else None, as_=OPS)
    assert answer.status == 400, (path, answer.status, answer.body)
    assert answer.body["error"]["code"] == "ValidationFailed"


def test_no_route_takes_over_or_shows_another_workflows_instance(
    secure_host: SecureHost,
) -> None:
    """A start under a finished instance's ID would replace its history; a workflow's own
    routes would show any instance's output. Both are refused, and the victim is intact."""
    host = secure_host
    small = {"amount": 10, "requesterEmail": OPS}
    started = host.call("POST", "/api/purchase-orders", small, as_=OPS)
    victim, status_url = started.body["id"], started.body["statusQueryGetUri"]
    eventually(
        lambda: host.call("GET", status_url, key=None).body["runtimeStatus"] == "Completed",
        what="the purchase order to be auto-approved",
    )
    before = host.call("GET", status_url, key=None).body

    takeovers = [
        ("POST", f"/api/orchestrators/hello_sequence/{victim}", {"cities": ["x"]}),
        ("POST", "/api/monitors", {"monitorId": victim, "url": "http://93.184.215.14/"}),
        ("POST", "/api/batches", {"jobId": victim, "dataSource": {"items": [{}]}}),
        ("POST", "/api/orders", {**ORDER, "orderId": victim}),
    ]
    for method, path, body in takeovers:
        answer = host.call(method, path, body)
        assert (answer.status, answer.code) == (409, "InstanceIdTaken"), (path, answer.body)
    for method, path, body in [
        ("GET", f"/api/monitors/{victim}", None),
        ("GET", f"/api/batches/{victim}", None),
        ("POST", f"/api/monitors/{victim}/stop", {}),
        ("POST", f"/api/batches/{victim}/cancel", {}),
    ]:
        answer = host.call(method, path, body)
        assert answer.status == 404, (path, answer.status, answer.body)
        assert "Auto-approved" not in answer.raw.decode()
    after = host.call("GET", status_url, key=None).body
    assert (after["name"], after["output"], after["createdTime"]) == (
        before["name"],
        before["output"],
        before["createdTime"],
    )
