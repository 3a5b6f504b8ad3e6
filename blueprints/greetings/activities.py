"""Activities of the greetings sample."""

import azure.durable_functions as df

from models.greetings import SayHelloInput, SayHelloResult

bp = df.Blueprint()


def greeting_for(city: str) -> str:
    """Return the greeting for a city.

    Parameters
    ----------
    city : str
        The city's name.

    Returns
    -------
    str
        ``"Hello {city}!"``.
    """
    return f"Hello {city}!"


# A bare ``dict``: the worker checks binding annotations with isinstance(..., type), which a
# parameterised ``dict[str, Any]`` does not pass on every worker version.
@bp.activity_trigger(input_name="payload")
def say_hello(payload: dict) -> dict:
    """Greet one city.

    Parameters
    ----------
    payload : dict
        A :class:`~models.greetings.SayHelloInput` as JSON.

    Returns
    -------
    dict
        A :class:`~models.greetings.SayHelloResult` as JSON.
    """
    request = SayHelloInput.model_validate(payload)
    return SayHelloResult(greeting=greeting_for(request.city)).to_wire()
