"""GET/DELETE /api/instances/{id} and POST .../terminate, /suspend, /resume."""

import pytest

FINISHED = ["Completed", "Failed", "Terminated", "Canceled"]


class TestGetInstance:
    async def test_status_with_decoded_input(self, api, client):
        """The status shows the input as JSON, not as the string the client stored it as."""
        client.add_instance("greet-1", input_={"cities": ["Tokyo"]})

        response = await api("GET", "instances/greet-1")

        assert response.status == 200
        assert response.body["instanceId"] == "greet-1"
        assert response.body["name"] == "hello_sequence"
        assert response.body["runtimeStatus"] == "Running"
        assert response.body["input"] == {"cities": ["Tokyo"]}
        assert response.body["createdTime"].endswith("Z")
        assert "historyEvents" not in response.body

    async def test_an_input_that_is_not_json_is_shown_as_its_text(self, api, client):
        """An input stored with NaN (the durable webhook takes it, as Newtonsoft does) is shown
        as the text it is; the status answered 500."""
        client.add_instance("greet-nan", input_={"cities": [float("nan")]})

        response = await api("GET", "instances/greet-nan")

        assert response.status == 200
        assert response.body["input"] == '{"cities": [NaN]}'

    async def test_history_on_request(self, api, client):
        """``history=true`` adds the execution history."""
        events = [{"EventType": "ExecutionStarted", "FunctionName": "hello_sequence"}]
        client.add_instance("greet-1", history=events)

        response = await api("GET", "instances/greet-1", params={"history": "true"})

        assert response.status == 200
        assert response.body["historyEvents"] == events

    async def test_bad_history_flag_is_400(self, api, client):
        """A flag that is not a boolean is named."""
        client.add_instance("greet-1")

        response = await api("GET", "instances/greet-1", params={"history": "lots"})

        assert response.status == 400
        assert response.error_fields == ["history"]

    async def test_unknown_instance_is_404(self, api):
        """An unknown ID answers 404 in the error shape."""
        response = await api("GET", "instances/ghost")

        assert response.status == 404
        assert response.error["code"] == "InstanceNotFound"


class TestTerminate:
    async def test_running_instance_is_terminated_with_the_reason(self, api, client):
        """The reason from the body is passed on, and the answer points at the status."""
        client.add_instance("greet-1")

        response = await api("POST", "instances/greet-1/terminate", {"reason": "duplicate"})

        assert response.status == 202
        assert client.commands == [("terminate", "greet-1", "duplicate")]
        assert response.headers["location"].endswith("/api/instances/greet-1")
        assert response.body["statusQueryGetUri"] == response.headers["location"]

    async def test_reason_from_query_string(self, api, client):
        """Without a body, ``?reason=`` is used."""
        client.add_instance("greet-1")

        await api("POST", "instances/greet-1/terminate", params={"reason": "by hand"})

        assert client.commands == [("terminate", "greet-1", "by hand")]

    async def test_reason_defaults(self, api, client):
        """Without any reason, a default one says where the command came from."""
        client.add_instance("greet-1", status="Suspended")

        response = await api("POST", "instances/greet-1/terminate")

        assert response.status == 202
        assert client.commands[0][2] == "Terminated via the HTTP API"

    @pytest.mark.parametrize("finished", FINISHED)
    async def test_finished_instance_is_410(self, api, client, finished):
        """Terminating an instance that has finished answers 410."""
        client.add_instance("greet-1", status=finished)

        response = await api("POST", "instances/greet-1/terminate")

        assert response.status == 410
        assert response.error["code"] == "InstanceFinished"
        assert client.commands == []

    async def test_unknown_instance_is_404(self, api, client):
        """Terminating an unknown ID answers 404."""
        response = await api("POST", "instances/ghost/terminate")

        assert response.status == 404
        assert client.commands == []

    async def test_reason_of_wrong_type_is_400(self, api, client):
        """A reason that is not a string is named."""
        client.add_instance("greet-1")

        response = await api("POST", "instances/greet-1/terminate", {"reason": 42})

        assert response.status == 400
        assert response.error_fields == ["reason"]
        assert client.commands == []


class TestSuspendResume:
    async def test_suspend_then_resume(self, api, client):
        """A running instance suspends, and a suspended one resumes."""
        client.add_instance("greet-1")

        suspended = await api("POST", "instances/greet-1/suspend", {"reason": "audit"})
        resumed = await api("POST", "instances/greet-1/resume")

        assert (suspended.status, resumed.status) == (202, 202)
        assert client.commands == [
            ("suspend", "greet-1", "audit"),
            ("resume", "greet-1", "Resumed via the HTTP API"),
        ]

    async def test_suspending_a_suspended_instance_is_409(self, api, client):
        """Suspending twice is the caller's mistake (the host would answer 500)."""
        client.add_instance("greet-1", status="Suspended")

        response = await api("POST", "instances/greet-1/suspend")

        assert response.status == 409
        assert response.error["code"] == "InvalidInstanceState"
        assert client.commands == []

    async def test_resuming_a_running_instance_is_409(self, api, client):
        """Only a suspended instance can resume."""
        client.add_instance("greet-1", status="Running")

        response = await api("POST", "instances/greet-1/resume")

        assert response.status == 409
        assert client.commands == []

    @pytest.mark.parametrize("command", ["suspend", "resume"])
    async def test_finished_instance_is_410(self, api, client, command):
        """A finished instance can be neither suspended nor resumed."""
        client.add_instance("greet-1", status="Completed")

        response = await api("POST", f"instances/greet-1/{command}")

        assert response.status == 410


class TestPurge:
    @pytest.mark.parametrize("finished", FINISHED)
    async def test_finished_instance_is_purged(self, api, client, finished):
        """A finished instance's history is deleted."""
        client.add_instance("greet-1", status=finished)

        response = await api("DELETE", "instances/greet-1")

        assert response.status == 200
        assert response.body == {"id": "greet-1", "instancesDeleted": 1}
        assert client.purged == ["greet-1"]

    async def test_running_instance_is_not_purged(self, api, client):
        """A live instance is refused with 409, telling the caller to terminate it first."""
        client.add_instance("greet-1", status="Running")

        response = await api("DELETE", "instances/greet-1")

        assert response.status == 409
        assert "terminate" in response.error["message"]
        assert client.purged == []

    async def test_unknown_instance_is_404(self, api, client):
        """Purging an unknown ID answers 404."""
        response = await api("DELETE", "instances/ghost")

        assert response.status == 404
        assert client.purged == []
