"""POST /api/instances/{instanceId}/events/{eventName}: validated external events."""

import pytest
from pydantic import Field

from models import registry
from models.common import WireModel


class OrderInput(WireModel):
    order_id: str


class ApprovalDecision(WireModel):
    approved: bool
    approver_name: str = Field(min_length=1)


@pytest.fixture(autouse=True)
def approval_workflow(monkeypatch):
    """A workflow that waits for an ``ApprovalDecision`` event, registered for one test."""
    monkeypatch.setattr(registry, "_workflows", dict(registry._workflows))
    registry.register_workflow(
        "approve_order", OrderInput, events={"ApprovalDecision": ApprovalDecision}
    )


DECISION = {"approved": True, "approverName": "Kim"}


class TestRaise:
    async def test_valid_payload_is_raised_as_json(self, api, client):
        """The validated payload is raised as a camelCase dict and the answer is 202."""
        client.add_instance("order-1", name="approve_order")

        response = await api(
            "POST",
            "instances/order-1/events/ApprovalDecision",
            {"Approved": True, "ApproverName": "Kim"},
        )

        assert response.status == 202
        assert response.body["id"] == "order-1"
        assert client.raised == [("order-1", "ApprovalDecision", DECISION)]

    async def test_event_name_is_matched_case_insensitively(self, api, client):
        """The event is raised under the registered spelling, which the orchestrator waits on."""
        client.add_instance("order-1", name="approve_order")

        response = await api("POST", "instances/order-1/events/approvaldecision", DECISION)

        assert response.status == 202
        assert client.raised[0][1] == "ApprovalDecision"

    async def test_suspended_instance_still_takes_events(self, api, client):
        """A suspended instance buffers the event until it resumes."""
        client.add_instance("order-1", name="approve_order", status="Suspended")

        response = await api("POST", "instances/order-1/events/ApprovalDecision", DECISION)

        assert response.status == 202


class TestRaiseRefusals:
    async def test_unknown_instance_is_404(self, api, client):
        """An instance ID nobody started answers 404."""
        response = await api("POST", "instances/ghost/events/ApprovalDecision", DECISION)

        assert response.status == 404
        assert response.error["code"] == "InstanceNotFound"
        assert response.error_fields == ["instanceId"]
        assert client.raised == []

    async def test_unknown_event_is_400_listing_accepted_events(self, api, client):
        """An event the orchestrator does not wait for answers 400 with the accepted names."""
        client.add_instance("order-1", name="approve_order")

        response = await api("POST", "instances/order-1/events/Cancel", DECISION)

        assert response.status == 400
        assert response.error["code"] == "UnknownEvent"
        assert response.error_fields == ["eventName"]
        assert response.error["details"][0]["accepted"] == ["ApprovalDecision"]
        assert client.raised == []

    async def test_orchestrator_without_events_accepts_none(self, api, client):
        """An instance of an orchestrator that registered no events refuses every event."""
        client.add_instance("greet-1", name="hello_sequence")

        response = await api("POST", "instances/greet-1/events/ApprovalDecision", DECISION)

        assert response.status == 400
        assert response.error["details"][0]["accepted"] == []

    @pytest.mark.parametrize("finished", ["Completed", "Failed", "Terminated", "Canceled"])
    async def test_finished_instance_is_410(self, api, client, finished):
        """An instance that has finished answers 410 Gone."""
        client.add_instance("order-1", name="approve_order", status=finished)

        response = await api("POST", "instances/order-1/events/ApprovalDecision", DECISION)

        assert response.status == 410
        assert response.error["code"] == "InstanceFinished"
        assert finished in response.error["message"]
        assert client.raised == []

    async def test_instance_finishing_during_the_call_is_410(self, api, client, monkeypatch):
        """When the host reports the instance gone after the status check, the answer is 410."""
        client.add_instance("order-1", name="approve_order")

        async def gone(instance_id, *args, **kwargs):
            raise Exception(f"Instance with ID {instance_id} is gone: either completed or failed")

        monkeypatch.setattr(client, "raise_event", gone)

        response = await api("POST", "instances/order-1/events/ApprovalDecision", DECISION)

        assert response.status == 410

    async def test_each_invalid_field_is_named(self, api, client):
        """A payload with a wrong type and a missing field names both."""
        client.add_instance("order-1", name="approve_order")

        response = await api(
            "POST", "instances/order-1/events/ApprovalDecision", {"approved": "perhaps"}
        )

        assert response.status == 400
        assert response.error["code"] == "ValidationFailed"
        assert sorted(response.error_fields) == ["approved", "approverName"]
        assert client.raised == []

    async def test_malformed_json_is_400(self, api, client):
        """A payload that is not JSON answers 400 MalformedJson."""
        client.add_instance("order-1", name="approve_order")

        response = await api("POST", "instances/order-1/events/ApprovalDecision", b"approved")

        assert response.status == 400
        assert response.error["code"] == "MalformedJson"
        assert client.raised == []
