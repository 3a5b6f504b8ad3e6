"""The one ID grammar (models.ids): what it accepts, what it refuses and why."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from models.ids import (
    MAX_LENGTHS,
    BlobName,
    InstanceId,
    OrderId,
    Sku,
    check_blob_name,
    check_id,
    id_problem,
)

# Each of these reached a 500 or a wrong resource somewhere when used as an ID (issue #14).
HOSTILE_IDS = [
    ".",
    "..",
    "%2E",
    "%2F",
    "a%252Fb",
    "a/b",
    "a\\b",
    "a?b",
    "a#b",
    "@inventory@SKU-1",
    "-leading-dash",
    ":leading-colon",
    "a b",
    " a",
    "a\n",
    "a\x00b",
    "²",
    "café",
    "ａ",  # a full-width letter that NFKC folds to "a"
    "",
]


@pytest.mark.parametrize("value", HOSTILE_IDS)
def test_hostile_ids_are_refused_by_every_kind(value: str) -> None:
    for kind in MAX_LENGTHS:
        assert id_problem(value, kind) is not None, (kind, value)
        with pytest.raises(ValueError):
            check_id(value, kind)


@pytest.mark.parametrize(
    "value", ["a", "0", "order-1", "A.b_c:d-e", "approval-r1", "job:group:0001", "a..b"]
)
def test_ids_of_the_grammar_are_kept_unchanged(value: str) -> None:
    assert check_id(value, "instance") == value


def test_each_kind_has_its_length_limit() -> None:
    assert check_id("x" * 256, "instance")
    assert id_problem("x" * 257, "instance") == "must be at most 256 characters"
    assert id_problem("x" * 101, "order") == "must be at most 100 characters"
    assert id_problem("x" * 65, "sku") == "must be at most 64 characters"


def test_non_strings_are_refused() -> None:
    assert id_problem(None, "instance") == "must not be empty"
    assert id_problem(12, "order") == "must not be empty"


class _Ids(BaseModel):
    instance: InstanceId
    order: OrderId | None = None
    skus: list[Sku] = []


@pytest.mark.parametrize("value", HOSTILE_IDS)
def test_model_fields_apply_the_same_grammar(value: str) -> None:
    with pytest.raises(ValidationError):
        _Ids(instance=value)
    with pytest.raises(ValidationError):
        _Ids(instance="ok", order=value)
    with pytest.raises(ValidationError):
        _Ids(instance="ok", skus=[value])


def test_model_fields_keep_good_ids() -> None:
    ids = _Ids(instance="i-1", order="o:1", skus=["SKU-1"])
    assert (ids.instance, ids.order, ids.skus) == ("i-1", "o:1", ["SKU-1"])


def test_the_json_schema_states_the_grammar() -> None:
    schema = TypeAdapter(OrderId).json_schema()
    assert schema["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
    assert schema["maxLength"] == 100
    assert "starting with a letter or digit" in schema["description"]


@pytest.mark.parametrize("value", ["inputs/day-1.jsonl", "a", "jobs/j1/chunks/0001.json"])
def test_blob_names_are_ids_joined_by_slashes(value: str) -> None:
    assert check_blob_name(value) == value
    assert TypeAdapter(BlobName).validate_python(value) == value


@pytest.mark.parametrize(
    "value", ["a/../b", "../a", "a/.", "/a", "a/", "a//b", "a\\b", "a/%2E%2E/b", "", "x" * 401]
)
def test_blob_names_cannot_climb_or_escape(value: str) -> None:
    with pytest.raises(ValueError):
        check_blob_name(value)
    with pytest.raises(ValidationError):
        TypeAdapter(BlobName).validate_python(value)
