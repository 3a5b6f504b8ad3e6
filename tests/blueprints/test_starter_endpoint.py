"""POST /api/orchestrators/{name}[/{instanceId}]: validated starts, 202 check-status reply."""

import pytest
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

CITIES = {"cities": ["Tokyo", "Seattle", "London"]}


class TestStart:
    async def test_valid_body_starts_the_orchestrator_with_its_json(self, api, client):
        """The orchestrator starts with the validated model's camelCase JSON."""
        response = await api("POST", "orchestrators/hello_sequence", {"Cities": [" Tokyo "]})

        assert response.status == 202
        assert client.started == [("hello_sequence", response.body["id"], {"cities": ["Tokyo"]})]

    async def test_reply_is_the_check_status_response(self, api):
        """The 202 carries the management URLs, Location and Retry-After."""
        response = await api("POST", "orchestrators/hello_sequence", CITIES)

        instance_id = response.body["id"]
        for key in (
            "statusQueryGetUri",
            "sendEventPostUri",
            "terminatePostUri",
            "purgeHistoryDeleteUri",
            "suspendPostUri",
            "resumePostUri",
        ):
            assert instance_id in response.body[key], key
        assert response.headers["location"] == response.body["statusQueryGetUri"]
        assert response.headers["retry-after"] == "10"

    async def test_orchestrator_name_is_case_insensitive(self, api, client):
        """A name in another case starts the orchestrator under its registered name."""
        response = await api("POST", "orchestrators/Hello_Sequence", CITIES)

        assert response.status == 202
        assert client.started[0][0] == "hello_sequence"

    async def test_caller_chosen_instance_id_is_used(self, api, client):
        """The second route starts under the instance ID in the path."""
        response = await api("POST", "orchestrators/hello_sequence/order-42", CITIES)

        assert response.status == 202
        assert response.body["id"] == "order-42"
        assert client.started[0][1] == "order-42"

    @pytest.mark.parametrize("finished", ["Completed", "Failed", "Terminated"])
    async def test_finished_instance_id_can_be_reused(self, api, client, finished):
        """An ID whose instance has finished starts afresh (NonRunningStates)."""
        client.add_instance("order-42", status=finished)

        response = await api("POST", "orchestrators/hello_sequence/order-42", CITIES)

        assert response.status == 202


class TestStartRefusals:
    async def test_unknown_orchestrator_is_404_listing_accepted_names(self, api, client):
        """An unknown name answers 404 and lists the names that can be started."""
        response = await api("POST", "orchestrators/no_such_flow", CITIES)

        assert response.status == 404
        assert response.error["code"] == "UnknownOrchestrator"
        assert response.error_fields == ["name"]
        assert "hello_sequence" in response.error["details"][0]["accepted"]
        assert "hello_sequence" in response.error["message"]
        assert client.started == []

    async def test_malformed_json_is_400(self, api, client):
        """A body that is not JSON answers 400 MalformedJson."""
        response = await api("POST", "orchestrators/hello_sequence", b'{"cities": [')

        assert response.status == 400
        assert response.error["code"] == "MalformedJson"
        assert response.error_fields == ["body"]
        assert client.started == []

    async def test_nan_is_not_json(self, api):
        """NaN, which Python's parser would accept, is refused as malformed."""
        response = await api("POST", "orchestrators/hello_sequence", b'{"cities": NaN}')

        assert response.status == 400
        assert response.error["code"] == "MalformedJson"

    async def test_missing_field_is_named(self, api, client):
        """An empty body answers 400 naming the required field."""
        response = await api("POST", "orchestrators/hello_sequence")

        assert response.status == 400
        assert response.error["code"] == "ValidationFailed"
        assert response.error_fields == ["cities"]
        assert response.error["details"][0]["code"] == "missing"
        assert client.started == []

    async def test_each_invalid_field_is_named(self, api):
        """Every bad item is reported with its path."""
        response = await api("POST", "orchestrators/hello_sequence", {"cities": ["ok", "", 7]})

        assert response.status == 400
        assert response.error_fields == ["cities[1]", "cities[2]"]

    async def test_body_that_is_not_an_object_is_named_body(self, api):
        """A JSON array where an object is expected names the body itself."""
        response = await api("POST", "orchestrators/hello_sequence", ["Tokyo"])

        assert response.status == 400
        assert response.error_fields == ["body"]

    @pytest.mark.parametrize("instance_id", ["@entity", "a" * 257, "bad%23id", "tab%09id"])
    async def test_invalid_instance_id_is_400(self, api, client, instance_id):
        """IDs the durable extension would refuse are refused up front."""
        response = await api("POST", f"orchestrators/hello_sequence/{instance_id}", CITIES)

        assert response.status == 400
        assert response.error_fields == ["instanceId"]
        assert client.started == []

    @pytest.mark.parametrize("active", ["Running", "Pending", "Suspended"])
    async def test_running_instance_id_is_409_with_its_status_url(self, api, client, active):
        """Starting an ID that is in flight answers 409 pointing at the running instance."""
        client.add_instance("order-42", status=active)

        response = await api("POST", "orchestrators/hello_sequence/order-42", CITIES)

        assert response.status == 409
        assert response.error["code"] == "InstanceAlreadyRunning"
        status_url = response.headers["location"]
        assert "/instances/order-42?" in status_url
        assert response.error["details"][0]["statusQueryGetUri"] == status_url
        assert status_url in response.error["message"]
        assert client.started == []

    async def test_lost_race_with_another_start_is_409(self, api, client, monkeypatch):
        """When the host refuses because another start won the race, the answer is 409."""
        client.add_instance("order-42", status="Running")

        async def no_instance_yet(*args, **kwargs):
            return DurableOrchestrationStatus.from_json("")

        monkeypatch.setattr(client, "get_status", no_instance_yet)

        response = await api("POST", "orchestrators/hello_sequence/order-42", CITIES)

        assert response.status == 409
        assert response.error["code"] == "InstanceAlreadyRunning"
