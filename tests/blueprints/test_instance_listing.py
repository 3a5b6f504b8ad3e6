"""GET /api/instances: filters and paging past 100 instances, against a stand-in management API.

The stand-in serves ``GET {rpcBaseUrl}instances/`` over real HTTP the way the host does
(protocol notes §7.1): ``top`` as page size, the ``x-ms-continuation-token`` header both ways,
and a server error for a token it cannot read.
"""

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from api_harness import Api, FakeDurableClient
from pydantic import BaseModel

from models import registry

TOKEN = "x-ms-continuation-token"
START = datetime(2025, 1, 1, tzinfo=UTC)


def listed_instance(number: int, name: str = "hello_sequence") -> dict:
    created = START + timedelta(minutes=number)
    return {
        "name": name,
        "instanceId": f"inst-{number:04d}",
        "runtimeStatus": "Completed" if number % 2 else "Running",
        "input": json.dumps({"cities": [f"City {number}"]}),
        "output": None,
        "customStatus": None,
        "createdTime": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastUpdatedTime": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class ManagementApi:
    """Stand-in for the host's instance query, recording the requests it receives."""

    def __init__(self, instances: list[dict]) -> None:
        self.instances = instances
        self.requests: list[tuple[dict[str, str], str | None]] = []
        self.rpc_base_url = ""  # set once the server listens

    async def list_instances(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        token = request.headers.get(TOKEN)
        self.requests.append((query, token))
        if token is not None and not token.startswith("offset-"):
            return web.json_response({"Message": "Something went wrong"}, status=500)
        matching = [entry for entry in self.instances if self._matches(entry, query)]
        offset = int(token.removeprefix("offset-")) if token else 0
        top = int(query.get("top", "100"))
        page = matching[offset : offset + top]
        more = offset + top < len(matching)
        headers = {TOKEN: f"offset-{offset + top}" if more else ""}
        return web.json_response(page, headers=headers)

    @staticmethod
    def _matches(entry: dict, query: dict[str, str]) -> bool:
        statuses = query.get("runtimeStatus")
        if statuses and entry["runtimeStatus"] not in statuses.split(","):
            return False
        if not entry["instanceId"].startswith(query.get("instanceIdPrefix", "")):
            return False
        created = datetime.fromisoformat(entry["createdTime"])
        if "createdTimeFrom" in query and created < datetime.fromisoformat(
            query["createdTimeFrom"]
        ):
            return False
        return "createdTimeTo" not in query or created <= datetime.fromisoformat(
            query["createdTimeTo"]
        )


@pytest.fixture(autouse=True)
def other_flow(monkeypatch):
    """``other_flow``, registered public for one test: only public workflows are listed."""
    monkeypatch.setattr(registry, "_workflows", dict(registry._workflows))
    registry.register_workflow("other_flow", BaseModel, public=True)


@pytest.fixture
async def management_api():
    """A running stand-in with 250 instances: 50 ``other_flow`` in runs of 10, the rest
    ``hello_sequence`` (runs make a host page hold more matches than a page needs)."""
    stand_in = ManagementApi(
        [
            listed_instance(n, "other_flow" if (n // 10) % 5 == 0 else "hello_sequence")
            for n in range(250)
        ]
    )
    app = web.Application()
    app.router.add_get("/durabletask/instances/", stand_in.list_instances)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    stand_in.rpc_base_url = str(server.make_url("/durabletask/"))
    yield stand_in
    await server.close()


@pytest.fixture
def listing_api(management_api) -> Api:
    """The HTTP API, with a client whose binding points at the stand-in."""
    return Api(FakeDurableClient(rpc_base_url=management_api.rpc_base_url))


async def read_all_pages(listing_api: Api, params: dict[str, str]) -> list[list[dict]]:
    pages = []
    token = None
    while True:
        page_params = dict(params, **({"continuationToken": token} if token else {}))
        response = await listing_api("GET", "instances", params=page_params)
        assert response.status == 200, response.body
        pages.append(response.body["instances"])
        token = response.body["continuationToken"]
        assert response.headers.get(TOKEN) == token
        if token is None:
            return pages


class TestPaging:
    async def test_pages_through_more_than_100_instances(self, listing_api):
        """All 250 instances come back once each, 100 at a time, with a token between pages."""
        pages = await read_all_pages(listing_api, {})

        assert [len(page) for page in pages] == [100, 100, 50]
        ids = [entry["instanceId"] for page in pages for entry in page]
        assert len(set(ids)) == 250

    async def test_token_accepted_as_header(self, listing_api):
        """The continuation token also works as the x-ms-continuation-token request header."""
        first = await listing_api("GET", "instances", params={"top": "10"})

        second = await listing_api(
            "GET", "instances", params={"top": "10"}, headers={TOKEN: first.headers[TOKEN]}
        )

        assert second.body["instances"][0]["instanceId"] == "inst-0010"

    async def test_entries_show_decoded_input(self, listing_api):
        """Each listed input is JSON, not the string the client stored it as."""
        response = await listing_api("GET", "instances", params={"top": "1"})

        assert response.body["instances"][0]["input"] == {"cities": ["City 0"]}

    async def test_an_input_that_is_not_json_is_listed_as_its_text(
        self, listing_api, management_api
    ):
        """The durable webhook stores NaN and Infinity (Newtonsoft reads them): the listing
        shows such an input as the text it is, not a 500 for the whole page."""
        management_api.instances[0]["input"] = "NaN"
        management_api.instances[1]["input"] = '{"cities": [Infinity]}'

        response = await listing_api("GET", "instances", params={"top": "2"})

        assert response.status == 200
        inputs = [entry["input"] for entry in response.body["instances"]]
        assert inputs == ["NaN", '{"cities": [Infinity]}']

    async def test_name_filter_returns_every_match_once(self, listing_api, management_api):
        """Filtering by name (case-insensitively) skips and repeats nothing across pages."""
        pages = await read_all_pages(listing_api, {"name": "Other_Flow", "top": "7"})

        assert all(0 < len(page) <= 7 for page in pages)
        names = {entry["name"] for page in pages for entry in page}
        ids = [entry["instanceId"] for page in pages for entry in page]
        assert names == {"other_flow"}
        assert len(ids) == len(set(ids)) == 50

    async def test_name_filter_reads_further_pages_to_fill_one(self, listing_api, management_api):
        """A page of a sparse name holds more than the first host page's matches."""
        response = await listing_api("GET", "instances", params={"name": "other_flow", "top": "20"})

        # The first host page of 20 holds only 10 other_flow instances.
        assert len(response.body["instances"]) > 10
        assert len(management_api.requests) > 1

    async def test_entities_and_internal_instances_are_not_listed(
        self, listing_api, management_api
    ):
        """Entities and instances of workflows that are not public stay out of the listing."""
        management_api.instances[:0] = [
            listed_instance(900, "@inventory@SKU-1"),
            listed_instance(901, "saga"),
            listed_instance(902, "process_order"),
        ]

        pages = await read_all_pages(listing_api, {})

        names = {entry["name"] for page in pages for entry in page}
        assert names == {"hello_sequence", "other_flow"}
        assert sum(len(page) for page in pages) == 250


class TestFilters:
    async def test_filters_are_passed_to_the_management_api(self, listing_api, management_api):
        """Status, time range and prefix reach the host in its own parameter names."""
        response = await listing_api(
            "GET",
            "instances",
            params={
                "runtimeStatus": "completed, Running",
                "createdFrom": "2025-01-01T00:10:00Z",
                "createdTo": "2025-01-01T01:00:00",
                "instanceIdPrefix": "inst-00",
                "top": "5",
            },
        )

        assert response.status == 200
        query, _ = management_api.requests[0]
        assert query == {
            "runtimeStatus": "Completed,Running",
            "createdTimeFrom": "2025-01-01T00:10:00.000000Z",
            "createdTimeTo": "2025-01-01T01:00:00.000000Z",
            "instanceIdPrefix": "inst-00",
            "top": "5",
        }
        assert [e["instanceId"] for e in response.body["instances"]] == [
            f"inst-{n:04d}" for n in range(10, 15)
        ]

    async def test_status_filter_keeps_only_those_statuses(self, listing_api):
        """Only instances in the asked statuses come back."""
        response = await listing_api("GET", "instances", params={"runtimeStatus": "Running"})

        assert {entry["runtimeStatus"] for entry in response.body["instances"]} == {"Running"}


class TestListRefusals:
    async def test_each_bad_parameter_is_named(self, listing_api, management_api):
        """Bad values answer 400 naming every offending parameter, before calling the host."""
        response = await listing_api(
            "GET",
            "instances",
            params={"top": "0", "runtimeStatus": "Sleeping", "createdFrom": "yesterday"},
        )

        assert response.status == 400
        assert response.error["code"] == "ValidationFailed"
        assert sorted(response.error_fields) == ["createdFrom", "runtimeStatus[0]", "top"]
        assert management_api.requests == []

    async def test_inverted_time_range_is_400(self, listing_api):
        """createdFrom after createdTo is refused."""
        response = await listing_api(
            "GET",
            "instances",
            params={"createdFrom": "2025-02-01T00:00:00Z", "createdTo": "2025-01-01T00:00:00Z"},
        )

        assert response.status == 400
        assert "createdFrom" in response.error["details"][0]["message"]

    @pytest.mark.parametrize("edge", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
    @pytest.mark.parametrize("name", ["createdFrom", "createdTo"])
    async def test_a_time_outside_the_utc_range_is_400(
        self, listing_api, management_api, name, edge
    ):
        """A time that is no date in UTC (year 0 or 10000 once converted) is named, not a 500."""
        response = await listing_api("GET", "instances", params={name: edge})

        assert response.status == 400
        assert response.error_fields == [name]
        assert management_api.requests == []

    async def test_unreadable_token_is_400(self, listing_api):
        """A token the host cannot read is the caller's mistake, not a server error."""
        response = await listing_api("GET", "instances", params={"continuationToken": "junk"})

        assert response.status == 400
        assert response.error["code"] == "InvalidContinuationToken"
        assert response.error_fields == ["continuationToken"]


async def test_unreachable_management_api_is_503():
    """When the host's endpoint is down the answer is 503 in the error shape."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    api = Api(FakeDurableClient(rpc_base_url=f"http://127.0.0.1:{closed_port}/durabletask/"))

    response = await api("GET", "instances")

    assert response.status == 503
    assert response.error["code"] == "ManagementApiUnavailable"
