"""The wire conventions every model follows, and the helpers for durable payloads."""

import json

import pytest
from pydantic import Field, ValidationError

from models.common import (
    WireModel,
    check_text,
    comma_list,
    decode_json_text,
    failure_reason,
    parse_event,
    validation_details,
)


class Address(WireModel):
    postal_code: str = Field(min_length=3)


class Application(WireModel):
    application_id: str
    title: str
    created_date: str
    addresses: list[Address] = []


class TestWireNames:
    def test_output_is_camel_case(self):
        """Dumps use camelCase keys."""
        model = Application(application_id="A1", title="T", created_date="2025-01-01")

        assert model.to_wire() == {
            "applicationId": "A1",
            "title": "T",
            "createdDate": "2025-01-01",
            "addresses": [],
        }

    @pytest.mark.parametrize(
        "payload",
        [
            {"applicationId": "A1", "title": "T", "createdDate": "d"},
            {"ApplicationId": "A1", "Title": "T", "CreatedDate": "d"},
            {"application_id": "A1", "title": "T", "created_date": "d"},
        ],
        ids=["camelCase", "PascalCase", "snake_case"],
    )
    def test_input_accepts_each_spelling(self, payload):
        """camelCase, PascalCase and snake_case inputs all validate to the same model."""
        model = Application.model_validate(payload)

        assert (model.application_id, model.title, model.created_date) == ("A1", "T", "d")

    def test_unknown_fields_are_ignored(self):
        """A field added by a newer version does not break validation (replay safety)."""
        model = Application.model_validate(
            {"applicationId": "A1", "title": "T", "createdDate": "d", "addedLater": 1}
        )

        assert "addedLater" not in model.to_wire()


class TestParseEvent:
    EXPECTED = Address(postal_code="12345")

    @pytest.mark.parametrize(
        "payload",
        [
            {"postalCode": "12345"},
            json.dumps({"postalCode": "12345"}),
            json.dumps(json.dumps({"postalCode": "12345"})),
        ],
        ids=["dict (raw HTTP)", "JSON string (Python client)", "JSON string of a string"],
    )
    def test_every_delivery_shape_parses(self, payload):
        """However the runtime delivered the event, the model comes out."""
        assert parse_event(Address, payload) == self.EXPECTED

    def test_model_instance_passes_through(self):
        """An already-parsed event is returned as is."""
        assert parse_event(Address, self.EXPECTED) is self.EXPECTED

    @pytest.mark.parametrize("payload", ["not json", None, '{"postalCode": "1"}'])
    def test_bad_payload_raises_validation_error(self, payload):
        """Text that is not JSON, no payload, or an invalid field raise ValidationError."""
        with pytest.raises(ValidationError):
            parse_event(Address, payload)


class TestDecodeJsonText:
    def test_decodes_one_level_by_default(self):
        """A status input stored as JSON text reads back as JSON, once."""
        assert decode_json_text('{"a": 1}') == {"a": 1}
        assert decode_json_text('"123"') == "123"

    def test_leaves_unreadable_text_alone(self):
        """Text that is not JSON is shown as stored, never raising."""
        assert decode_json_text("plain words") == "plain words"


class TestValidationDetails:
    def test_names_each_field_by_its_path(self):
        """Nested and list fields are named with their path as the caller spelled it."""
        with pytest.raises(ValidationError) as caught:
            Application.model_validate(
                {"ApplicationId": 5, "title": "T", "addresses": [{"postalCode": "1"}]}
            )

        details = validation_details(caught.value)

        assert [d["field"] for d in details] == [
            "ApplicationId",
            "createdDate",
            "addresses[0].postalCode",
        ]
        assert [d["code"] for d in details] == ["string_type", "missing", "string_too_short"]

    def test_does_not_echo_the_input(self):
        """Details carry the problem, not the (possibly sensitive) value."""
        with pytest.raises(ValidationError) as caught:
            Address.model_validate({"postalCode": "s3"})

        assert "s3" not in json.dumps(validation_details(caught.value))

    def test_whole_value_errors_use_the_root_name(self):
        """When the value itself is wrong, the root name is reported."""
        with pytest.raises(ValidationError) as caught:
            Address.model_validate(["not", "an", "object"])

        assert validation_details(caught.value, root="body")[0]["field"] == "body"


# --- failure_reason: what outputs and statuses keep of a failure ------------------------------

_HOST_FAILURE = (
    "Orchestrator function 'batch_job' failed: Activity function 'partition_batch_input' "
    "failed:  RuntimeError: disk on fire in /home/site/wwwroot/blueprints/batches/store.py \n "
    '{"$type":"System.Exception","InnerException":{"RemoteStackTraceString":"  File '
    '\\"/home/site/wwwroot/blueprints/batches/store.py\\", line 12, in read"}}'
)


def test_failure_reason_keeps_who_failed_and_why_without_the_stack() -> None:
    reason = failure_reason(_HOST_FAILURE)

    assert reason == (
        "Orchestrator 'batch_job' failed: Activity 'partition_batch_input' failed: "
        "disk on fire in <path>"
    )


@pytest.mark.parametrize(
    "failure",
    [
        _HOST_FAILURE,
        Exception(_HOST_FAILURE),
        'Traceback (most recent call last):\n  File "/srv/app.py", line 3, in f',
        "Activity function 'x' failed:  KeyError: <models.Thing object at 0x7f3a2b1c9d80>",
        "x" * 1000,
    ],
)
def test_failure_reason_never_carries_internals(failure: object) -> None:
    reason = failure_reason(failure)

    assert len(reason) <= 200
    for internal in ("Traceback", 'File "', ".py", "0x7f", "$type", "/home/", "\n"):
        assert internal not in reason


def test_comma_list_collapses_repeats_so_a_long_repetition_costs_nothing() -> None:
    assert comma_list(",".join(["Running"] * 500) + ", Completed,,") == ["Running", "Completed"]
    assert comma_list(["a", "a", "b"]) == ["a", "b"]
    assert comma_list(3) == 3


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("   ", "must not be empty"),
        ("x" * 201, "at most 200"),
        ("a\x00b", "control characters"),
        ("bad \udcff utf-8", "control characters"),
    ],
)
def test_check_text_refuses_what_cannot_be_stored_or_shown(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_text(text, 200)


def test_check_text_trims_and_keeps_unicode() -> None:
    assert check_text("  Zoë Ångström  ", 200) == "Zoë Ångström"
