"""Keys as on Azure: no key, no call; the system key for the durable webhook; links that work."""

from __future__ import annotations

import re

import pytest

from devhost.app.loader import FunctionInfo, load_app
from tests.e2e.conftest import PROJECT
from tests.security.attacker import SecureHost, eventually
from tests.test_function_app import ANONYMOUS_FUNCTIONS

pytestmark = [pytest.mark.azurite, pytest.mark.host]

HTTP_FUNCTIONS = load_app(PROJECT).http


def concrete_path(info: FunctionInfo) -> str:
    """The function's route with a harmless value in each parameter."""
    return "/api/" + re.sub(r"\{[^}]+\}", "probe-1", info.route or info.name)


@pytest.mark.parametrize("info", HTTP_FUNCTIONS, ids=lambda info: info.name)
def test_every_route_needs_a_key_and_takes_one(secure_host: SecureHost, info: FunctionInfo) -> None:
    """Without a key: the host's bare 401, whoever is signed in; with the host key: served.

    A route documented as anonymous (docs/security.md) is served without a key instead.
    """
    method = info.methods[0]
    path = concrete_path(info)
    if info.auth_level == "anonymous":
        assert info.name in ANONYMOUS_FUNCTIONS, f"{info.name} is anonymous but not documented"
        assert secure_host.call(method, path, key=None).status != 401
        return

    refused = secure_host.call(method, path, {}, key=None, as_="admin@example.com")
    wrong = secure_host.call(method, path, {}, key="not-a-key")
    system = secure_host.call(method, path, {}, key="system")

    for answer in (refused, wrong, system):
        assert answer.status == 401, (method, path, answer.status, answer.raw[:200])
        assert answer.raw == b""
    served = secure_host.call(method, path, {}, key="function", as_="admin@example.com")
    assert served.status != 401, (method, path)
    assert served.status < 500, (method, path, served.status, served.raw[:300])


def test_the_durable_webhook_needs_the_system_key(secure_host: SecureHost) -> None:
    """The built-in API: no key or a function key is 401 (with the JWT challenge), the
    durabletask_extension key is served; the loopback RPC base is closed to callers."""
    url = "/runtime/webhooks/durabletask/instances"
    for key in (None, "function", "nope"):
        answer = secure_host.call("GET", url, key=key)
        assert answer.status == 401 and answer.raw == b""
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert secure_host.call("GET", url, key="system").status == 200
    master = secure_host.keys["masterKey"]
    assert secure_host.call("GET", url, key=master).status == 200
    for key in (None, "system", master):
        for path in ("/durabletask/instances/", "/durabletask/a-guess/instances/"):
            assert secure_host.call("GET", path, key=key).status == 404, path


def test_a_start_answers_links_that_work_as_returned(secure_host: SecureHost) -> None:
    """The 202's URLs carry the system key, as Azure's do, and work without adding anything."""
    started = secure_host.call("POST", "/api/orchestrators/hello_sequence", {"cities": ["Oslo"]})
    assert started.status == 202
    links = started.body
    assert links["statusQueryGetUri"].endswith(f"code={secure_host.system_key}")
    assert started.headers["Location"] == links["statusQueryGetUri"]

    def completed() -> bool:
        answer = secure_host.call("GET", links["statusQueryGetUri"], key=None)
        assert answer.status in (200, 202), answer.status
        return answer.status == 200 and answer.body["runtimeStatus"] == "Completed"

    eventually(completed, what="hello_sequence to complete through its status URL")
    purge = secure_host.call("DELETE", links["purgeHistoryDeleteUri"], key=None)
    assert purge.status == 200


def test_the_app_routes_own_links_work_too(secure_host: SecureHost) -> None:
    """A route answering with the client's check-status response hands out working links."""
    started = secure_host.call("POST", "/api/start-approval", {"timeoutSeconds": 300})
    assert started.status == 202
    approval_id = started.body["id"]
    event_url = started.body["sendEventPostUri"].replace("{eventName}", "ApprovalEvent")
    assert secure_host.call("GET", started.body["statusQueryGetUri"], key=None).status == 202
    # The webhook is the system key's holder's: it is not the app's identity-checked route.
    assert secure_host.call("POST", event_url, {"approver": "ops"}, key=None).status == 202
    eventually(
        lambda: secure_host.call("GET", started.body["statusQueryGetUri"], key=None).status == 200,
        what=f"human_approval {approval_id} to finish",
    )
