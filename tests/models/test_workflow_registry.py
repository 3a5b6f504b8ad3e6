"""Registering workflows and looking them up by orchestrator and event name."""

import pytest

from models import registry
from models.common import WireModel


class StartInput(WireModel):
    order_id: str


class Decision(WireModel):
    approved: bool


class OtherDecision(WireModel):
    approved: bool


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch):
    """Each test registers into its own copy of the registry."""
    monkeypatch.setattr(registry, "_workflows", {})


def test_lookup_is_case_insensitive_and_keeps_the_registered_name():
    """Any casing finds the workflow, which keeps the name the runtime knows."""
    registry.register_workflow("approve_order", StartInput)

    spec = registry.get_workflow("APPROVE_Order")

    assert spec is not None
    assert spec.name == "approve_order"
    assert spec.input_model is StartInput


def test_unknown_name_is_none():
    """An unregistered name finds nothing."""
    assert registry.get_workflow("nothing") is None


def test_event_lookup_returns_the_registered_spelling():
    """Events are found case-insensitively and reported with their registered name."""
    spec = registry.register_workflow("approve_order", StartInput, events={"Decision": Decision})

    assert spec.find_event("decision") == ("Decision", Decision)
    assert spec.find_event("Cancel") is None
    assert spec.event_names == ["Decision"]


def test_registering_the_same_spec_twice_is_harmless():
    """Re-importing a workflow module does not fail."""
    first = registry.register_workflow("approve_order", StartInput, events={"Decision": Decision})
    again = registry.register_workflow("approve_order", StartInput, events={"Decision": Decision})

    assert again is first


def test_conflicting_registration_is_refused():
    """Two different workflows cannot share a name, even in different case."""
    registry.register_workflow("approve_order", StartInput, events={"Decision": Decision})

    with pytest.raises(ValueError, match="already registered"):
        registry.register_workflow("Approve_Order", StartInput, events={"Decision": OtherDecision})


def test_event_names_differing_only_in_case_are_refused():
    """Events that a case-insensitive lookup could not tell apart are refused."""
    with pytest.raises(ValueError, match="differ only in case"):
        registry.register_workflow(
            "approve_order", StartInput, events={"Decision": Decision, "DECISION": Decision}
        )


def test_registered_workflows_are_sorted():
    """The list of workflows (shown in 404 answers) is in name order."""
    registry.register_workflow("zeta", StartInput)
    registry.register_workflow("Alpha", StartInput)

    assert [spec.name for spec in registry.registered_workflows()] == ["Alpha", "zeta"]
