"""Who may approve an order or resolve its failed compensation: designated approvers only, never
the order's own customer.

Requests go through the local host's HTTP front and the real durable client binding, with the
principal headers App Service Authentication would set (``WORKFLOW_AUTH=easyauth``).
"""

import base64
import json
from typing import Any

import pytest
from orders_harness import BIG, at_stage, make_order, order_host, place, refund_fails, seed

from blueprints.orders.approvers import APPROVER_ROLE_SETTING, APPROVERS_SETTING

pytestmark = pytest.mark.usefixtures("app_storage")

CUSTOMER = "ana@example.com"  # make_order's customerEmail
MARIA = "maria@example.com"
MALLORY = "mallory@example.com"


@pytest.fixture(autouse=True)
def _patient_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    # An accepted request answers 200 as soon as the order took it; the limit only matters
    # when both cores are busy, where 5 s could turn a 200 into a 202 "pending".
    monkeypatch.setenv("ORDERS_DECISION_WAIT_SECONDS", "60")


@pytest.fixture
def easyauth(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("WORKFLOW_AUTH", "easyauth")
    monkeypatch.delenv(APPROVERS_SETTING, raising=False)
    monkeypatch.delenv(APPROVER_ROLE_SETTING, raising=False)
    return monkeypatch


def signed_in(name: str, *roles: str, key: str | None = None) -> dict[str, str]:
    """The headers App Service Authentication sets for ``name`` (with Entra ID app roles)."""
    claims = [{"typ": "preferred_username", "val": name}, {"typ": "emails", "val": name}]
    claims += [{"typ": "roles", "val": role} for role in roles]
    principal = {
        "auth_typ": "aad",
        "claims": claims,
        "name_typ": "preferred_username",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }
    headers = {
        "X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(principal).encode()).decode(),
        "X-MS-CLIENT-PRINCIPAL-NAME": name,
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
    }
    return {**headers, "Idempotency-Key": key} if key else headers


async def _post(client: Any, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    response = await client.post(url, json=body, headers=headers)
    return response.status, await response.json()


async def _approve(client: Any, url: str, who: str, *roles: str, key: str | None = None) -> Any:
    """An approval by the signed-in ``who``, naming themselves as the approver."""
    return await _post(
        client, url, {"approved": True, "approver": who}, signed_in(who, *roles, key=key)
    )


async def _resolve(client: Any, url: str, who: str, key: str | None = None) -> Any:
    """A resolution by the signed-in ``who``, naming themselves."""
    body = {"resolvedBy": who, "note": "refunded by bank transfer"}
    return await _post(client, url, body, signed_in(who, key=key))


def _refused(answer: tuple[int, Any], code: str, field: str) -> None:
    status, body = answer
    assert status == 403, body
    assert body["error"]["code"] == code
    assert body["error"]["details"][0]["field"] == field


async def test_only_a_listed_approver_who_is_not_the_customer_approves(
    easyauth: pytest.MonkeyPatch,
) -> None:
    # The customer is listed too: separation of duties still refuses them.
    easyauth.setenv(APPROVERS_SETTING, f" {CUSTOMER.upper()}, Maria@Example.com ")
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        placed = await client.post("/api/orders", json=make_order("o-sod", BIG))
        assert placed.status == 202
        await host.wait_for_custom_status("o-sod", at_stage("awaiting_approval"))
        url = "/api/orders/o-sod/approval"

        own = await _approve(client, url, CUSTOMER, key="k-own")
        _refused(own, "OwnOrder", "approver")
        other = await _approve(client, url, MALLORY, key="k-mal")
        _refused(other, "NotAnApprover", "approver")
        # Refused before anything was raised: the order still waits, nothing decided.
        view = await (await client.get("/api/orders/o-sod")).json()
        assert view["stage"] == "awaiting_approval" and view["customStatus"]["approval"] is None

        taken = await _approve(client, url, MARIA, key="k-maria")
        assert taken[0] == 200, taken[1]
        assert taken[1]["outcome"] == "accepted"
        assert taken[1]["decision"]["by"] == "maria@example.com"
        status = await host.wait("o-sod")
        assert status["output"]["status"] == "completed"

        # A retry with the same key answers as before, also once the order finished...
        again = await _approve(client, url, MARIA, key="k-maria")
        assert again == taken
        # ...and the customer reusing that key is still refused for who they are.
        reused = await _approve(client, url, CUSTOMER, key="k-maria")
        _refused(reused, "OwnOrder", "approver")


async def test_with_easyauth_no_designated_approver_means_nobody_then_the_role_decides(
    easyauth: pytest.MonkeyPatch,
) -> None:
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        await place(host, client, make_order("o-role", BIG), "awaiting_approval")
        url = "/api/orders/o-role/approval"

        nobody = await _approve(client, url, MARIA, "OrderApprover")
        _refused(nobody, "NotAnApprover", "approver")
        assert APPROVERS_SETTING in nobody[1]["error"]["message"]

        # Read on every request: the role designates approvers from now on.
        easyauth.setenv(APPROVER_ROLE_SETTING, "OrderApprover")
        _refused(
            await _approve(client, url, MALLORY, "Reader"),
            "NotAnApprover",
            "approver",
        )
        _refused(
            await _approve(client, url, CUSTOMER, "OrderApprover"),
            "OwnOrder",
            "approver",
        )
        taken = await _approve(client, url, MARIA, "OrderApprover")
        assert taken[0] == 200 and taken[1]["outcome"] == "accepted", taken[1]
        assert (await host.wait("o-role"))["output"]["status"] == "completed"


async def test_a_resolution_follows_the_same_rules(easyauth: pytest.MonkeyPatch) -> None:
    easyauth.setenv(APPROVERS_SETTING, f"{CUSTOMER},ops-kim@example.com")
    async with order_host() as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        order = refund_fails("o-res")
        await place(host, client, order, "compensation_failed")
        url = "/api/orders/o-res/resolution"

        _refused(await _resolve(client, url, CUSTOMER), "OwnOrder", "resolvedBy")
        _refused(await _resolve(client, url, MALLORY), "NotAnApprover", "resolvedBy")
        view = await (await client.get("/api/orders/o-res")).json()
        assert view["stage"] == "compensation_failed" and view["runtimeStatus"] == "Running"

        taken = await _resolve(client, url, "ops-kim@example.com", key="r-kim")
        assert taken[0] == 200 and taken[1]["outcome"] == "accepted", taken[1]
        status = await host.wait("o-res")
        assert status["output"]["manualResolution"]["resolvedBy"] == "ops-kim@example.com"
        assert await _resolve(client, url, "ops-kim@example.com", key="r-kim") == taken


async def test_locally_the_body_names_the_person_and_the_customer_is_still_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKFLOW_AUTH", "none")
    monkeypatch.delenv("WEBSITE_INSTANCE_ID", raising=False)
    monkeypatch.delenv(APPROVERS_SETTING, raising=False)
    monkeypatch.delenv(APPROVER_ROLE_SETTING, raising=False)
    async with order_host(virtual_time="manual") as host:
        await seed(host, SKU_A=5)
        client = await host.http()
        await place(host, client, make_order("o-local", BIG), "awaiting_approval")
        url = "/api/orders/o-local/approval"

        own = await _post(client, url, {"approved": True, "approver": "Ana@Example.com"}, {})
        _refused(own, "OwnOrder", "approver")
        by_id = await _post(client, url, {"approved": True, "approver": "cust-1"}, {})
        _refused(by_id, "OwnOrder", "approver")
        # No approvers designated locally: anybody else decides, as the quick start does.
        taken = await _post(client, url, {"approved": True, "approver": "maria"}, {})
        assert taken[0] == 200 and taken[1]["outcome"] == "accepted", taken[1]

        # Designated locally too: the list applies to the body's name.
        monkeypatch.setenv(APPROVERS_SETTING, "maria")
        await place(host, client, make_order("o-local2", BIG), "awaiting_approval")
        url2 = "/api/orders/o-local2/approval"
        other = await _post(client, url2, {"approved": True, "approver": "li"}, {})
        _refused(other, "NotAnApprover", "approver")
        taken2 = await _post(client, url2, {"approved": True, "approver": "maria"}, {})
        assert taken2[0] == 200, taken2[1]
