"""Models of the greetings sample (``hello_sequence``): greet a list of cities in turn."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from models.common import WireModel

__all__ = ["HelloSequenceInput", "HelloSequenceResult", "SayHelloInput", "SayHelloResult"]

CityName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class HelloSequenceInput(WireModel):
    """Input of ``hello_sequence`` (also the body of ``POST /api/orchestrators/hello_sequence``)."""

    cities: list[CityName] = Field(
        min_length=1,
        max_length=50,
        description="Cities to greet, in order.",
        examples=[["Tokyo", "Seattle", "London"]],
    )


class SayHelloInput(WireModel):
    """Input of the ``say_hello`` activity."""

    city: CityName


class SayHelloResult(WireModel):
    """Result of the ``say_hello`` activity."""

    greeting: str


class HelloSequenceResult(WireModel):
    """Output of ``hello_sequence``: one greeting per city, in the order given."""

    greetings: list[str]
