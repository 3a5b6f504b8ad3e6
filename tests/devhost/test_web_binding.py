"""The client binding JSON and the check-status payload (devhost/web/binding.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import azure.durable_functions as df
import pytest

from devhost.web.binding import check_status_payload, client_binding_json, url_encode
from devhost.web.management import parse_datetime

ORIGIN = "http://localhost:7071"
BASE = "http://localhost:7071/runtime/webhooks/durabletask"
QUERY = "taskHub=MyHub&connection=Storage"


def test_binding_json_has_the_hosts_shape() -> None:
    binding = json.loads(client_binding_json(ORIGIN, "MyHub", rpc_origin="http://127.0.0.1:7071"))

    assert binding == {
        "taskHubName": "MyHub",
        "connectionName": None,
        "creationUrls": {
            "createNewInstancePostUri": f"{BASE}/orchestrators/{{functionName}}[/{{instanceId}}]?",
            "createAndWaitOnNewInstancePostUri": (
                f"{BASE}/orchestrators/{{functionName}}[/{{instanceId}}]"
                "?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&"
            ),
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{BASE}/instances/INSTANCEID?{QUERY}",
            "sendEventPostUri": f"{BASE}/instances/INSTANCEID/raiseEvent/{{eventName}}?{QUERY}",
            "terminatePostUri": f"{BASE}/instances/INSTANCEID/terminate?reason={{text}}&{QUERY}",
            "rewindPostUri": f"{BASE}/instances/INSTANCEID/rewind?reason={{text}}&{QUERY}",
            "purgeHistoryDeleteUri": f"{BASE}/instances/INSTANCEID?{QUERY}",
            "restartPostUri": f"{BASE}/instances/INSTANCEID/restart?{QUERY}",
            "suspendPostUri": f"{BASE}/instances/INSTANCEID/suspend?reason={{text}}&{QUERY}",
            "resumePostUri": f"{BASE}/instances/INSTANCEID/resume?reason={{text}}&{QUERY}",
        },
        "baseUrl": BASE,
        "requiredQueryStringParameters": "",
        "rpcBaseUrl": "http://127.0.0.1:7071/durabletask/",
        "httpBaseUrl": None,
    }


def test_the_sdk_builds_a_client_from_the_binding() -> None:
    client = df.DurableOrchestrationClient(client_binding_json(ORIGIN, "MyHub"))

    payload = client.create_http_management_payload("abc")

    assert client._orchestration_bindings.rpc_base_url == f"{ORIGIN}/durabletask/"
    assert payload["statusQueryGetUri"] == f"{BASE}/instances/abc?{QUERY}"


def test_check_status_payload_leaves_out_rewind_and_encodes_the_id() -> None:
    payload = check_status_payload(ORIGIN, "a b/c", "MyHub")

    assert "rewindPostUri" not in payload
    assert payload["id"] == "a b/c"
    assert payload["statusQueryGetUri"] == f"{BASE}/instances/a+b%2Fc?{QUERY}"


def test_return_internal_server_error_on_failure_is_appended_to_the_status_url() -> None:
    payload = check_status_payload(
        ORIGIN, "i1", "MyHub", return_internal_server_error_on_failure=True
    )
    assert payload["statusQueryGetUri"].endswith("&returnInternalServerErrorOnFailure=true")


@pytest.mark.parametrize(
    ("raw", "encoded"), [("a-b_c.d!*()", "a-b_c.d!*()"), ("x~y", "x%7Ey"), ("é", "%C3%A9")]
)
def test_url_encode_matches_webutility(raw: str, encoded: str) -> None:
    assert url_encode(raw) == encoded


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-03-01T10:20:30Z", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-01 10:20:30", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-01T10:20:30.1234567Z", datetime(2024, 3, 1, 10, 20, 30, 123456, tzinfo=UTC)),
        (
            "2024-03-01T10:20:30 01:00",  # an unencoded '+' decodes to a space
            datetime(2024, 3, 1, 10, 20, 30, tzinfo=timezone(timedelta(hours=1))),
        ),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_query_dates_are_read_leniently_as_utc(text: str | None, expected: datetime | None) -> None:
    assert parse_datetime(text) == expected
