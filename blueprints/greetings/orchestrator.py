"""The ``hello_sequence`` orchestrator: call ``say_hello`` for each city, in order.

Registered in models.registry so ``POST /api/orchestrators/hello_sequence`` validates its body
against :class:`~models.greetings.HelloSequenceInput`.
"""

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from models.greetings import HelloSequenceInput, HelloSequenceResult, SayHelloInput, SayHelloResult
from models.registry import register_workflow

logger = logging.getLogger(__name__)

bp = df.Blueprint()

register_workflow("hello_sequence", HelloSequenceInput, public=True)


@bp.orchestration_trigger(context_name="context")
def hello_sequence(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    """Greet each city of the input in turn and return the greetings.

    Parameters
    ----------
    context : azure.durable_functions.DurableOrchestrationContext
        The orchestration context; its input is a :class:`~models.greetings.HelloSequenceInput`
        as JSON.

    Returns
    -------
    dict[str, Any]
        A :class:`~models.greetings.HelloSequenceResult` as JSON.
    """
    # expected_type=dict: payloads are plain JSON objects, which is also what the SDK's
    # upcoming strict decoding (AZURE_FUNCTIONS_DURABLE_STRICT_TYPING) asks callers to declare.
    request = HelloSequenceInput.model_validate(context.get_input(expected_type=dict))
    greetings: list[str] = []
    for city in request.cities:
        result = yield context.call_activity(
            "say_hello", SayHelloInput(city=city).to_wire(), expected_type=dict
        )
        greetings.append(SayHelloResult.model_validate(result).greeting)
    if not context.is_replaying:
        logger.info("hello_sequence %s greeted %d cities", context.instance_id, len(greetings))
    return HelloSequenceResult(greetings=greetings).to_wire()
