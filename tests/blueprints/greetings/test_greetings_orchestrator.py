"""The ``hello_sequence`` orchestrator, replayed by the real SDK from a host-shaped history.

The context JSON follows protocol notes §2.1-2.5: the input is the JSON text the Python client
stores, each completed activity is a TaskScheduled/TaskCompleted pair in its own episode.
"""

import json

import pytest
from api_harness import user_function
from azure.durable_functions.models.actions.ActionType import ActionType

TIMESTAMP = "2025-01-01T00:00:{:02d}.000Z"


def _event(event_type: int, second: int, event_id: int = -1, **fields) -> dict:
    return {
        "EventType": event_type,
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": TIMESTAMP.format(second),
        **fields,
    }


def context_json(orchestration_input: dict, activity_results: list) -> str:
    """The context the host sends once ``activity_results`` have come back, in order."""
    input_text = json.dumps(orchestration_input)
    history = [
        _event(12, 0),
        _event(0, 0, Name="hello_sequence", Version="", Input=json.dumps(input_text)),
    ]
    for seq, result in enumerate(activity_results):
        history += [
            _event(4, seq, seq, Name="say_hello", Input=None),
            _event(13, seq),
            _event(12, seq + 1),
            _event(5, seq + 1, TaskScheduledId=seq, Result=json.dumps(result)),
        ]
    return json.dumps(
        {
            "history": history,
            "input": input_text,
            "instanceId": "greet-1",
            "isReplaying": bool(activity_results),
            "parentInstanceId": None,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
        }
    )


def run_episode(orchestration_input: dict, activity_results: list) -> dict:
    # The function the worker calls with the context JSON the host sends.
    hello_sequence = user_function("hello_sequence")
    reply: dict = json.loads(hello_sequence(context_json(orchestration_input, activity_results)))
    return reply


def scheduled_activities(reply: dict) -> list[tuple[str, object]]:
    return [
        (action["functionName"], json.loads(action["input"]))
        for episode in reply["actions"]
        for action in episode
        if action["actionType"] == ActionType.CALL_ACTIVITY
    ]


CITIES = {"cities": ["Tokyo", "Seattle", "London"]}


def test_first_episode_greets_the_first_city():
    """The first episode schedules say_hello for the first city only."""
    reply = run_episode(CITIES, [])

    assert reply["isDone"] is False
    assert scheduled_activities(reply) == [("say_hello", {"city": "Tokyo"})]


def test_cities_are_greeted_in_sequence():
    """After the first greeting returns, the second city is scheduled, not before."""
    reply = run_episode(CITIES, [{"greeting": "Hello Tokyo!"}])

    assert reply["isDone"] is False
    assert scheduled_activities(reply)[-1] == ("say_hello", {"city": "Seattle"})
    assert len(scheduled_activities(reply)) == 2


def test_output_lists_the_greetings_in_order():
    """With every greeting back, the orchestration completes with them in input order."""
    results = [{"greeting": f"Hello {city}!"} for city in CITIES["cities"]]

    reply = run_episode(CITIES, results)

    assert reply["isDone"] is True
    assert reply["output"] == {"greetings": ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]}


def test_invalid_input_fails_the_orchestration():
    """An input without cities fails the instance with a message naming the field."""
    with pytest.raises(Exception, match="cities"):
        run_episode({"towns": ["Tokyo"]}, [])
