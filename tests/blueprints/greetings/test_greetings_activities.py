"""The ``say_hello`` activity and its business logic."""

import pytest
from api_harness import user_function
from pydantic import ValidationError

from blueprints.greetings import activities


def test_greeting_for_names_the_city():
    """The greeting is built from the city's name."""
    assert activities.greeting_for("Tokyo") == "Hello Tokyo!"


def test_activity_takes_and_returns_json():
    """The activity validates its JSON input and answers with a SayHelloResult as JSON."""
    say_hello = user_function("say_hello")

    assert say_hello({"City": "Seattle"}) == {"greeting": "Hello Seattle!"}


def test_activity_rejects_an_input_without_a_city():
    """A malformed input fails the activity with a message naming the field."""
    say_hello = user_function("say_hello")

    with pytest.raises(ValidationError, match="city"):
        say_hello({"town": "Seattle"})
