"""The greetings sample's input constraints."""

import pytest
from pydantic import ValidationError

from models.greetings import HelloSequenceInput


def test_city_names_are_trimmed():
    """Surrounding spaces are dropped from each city."""
    assert HelloSequenceInput.model_validate({"cities": [" Tokyo "]}).cities == ["Tokyo"]


@pytest.mark.parametrize(
    "cities",
    [[], ["   "], ["x" * 101], ["Tokyo"] * 51],
    ids=["no cities", "blank city", "long name", "too many"],
)
def test_constraints(cities):
    """At least one and at most 50 cities, each 1-100 characters."""
    with pytest.raises(ValidationError):
        HelloSequenceInput.model_validate({"cities": cities})
