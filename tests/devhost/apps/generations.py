"""A continue-as-new into a wide generation: its first checkpoint holds more history rows than
one Azure Table transaction takes."""

from __future__ import annotations

import azure.durable_functions as df

from devhost.app.loader import index_app

app = df.DFApp()

# More than one entity-group transaction holds (100 operations, the sentinel included).
WIDTH = 120


@app.activity_trigger(input_name="value")
async def plus_one(value: int) -> int:
    return value + 1


@app.orchestration_trigger(context_name="context")
def widen(context: df.DurableOrchestrationContext):
    """A first generation that waits for "Widen", then one that fans out ``WIDTH`` calls."""
    if context.get_input() == "wide":
        results = yield context.task_all(
            [context.call_activity("plus_one", n) for n in range(WIDTH)]
        )
        return sum(results)
    yield context.wait_for_external_event("Widen")
    context.continue_as_new("wide")
    return None


CARRIED = 100  # events a generation carries into the next: more than one transaction holds


@app.orchestration_trigger(context_name="context")
def carry(context: df.DurableOrchestrationContext):
    """Continues as new on "Go"; the next generation counts the ``CARRIED`` "Extra" events."""
    if context.get_input() == "next":
        for _ in range(CARRIED):
            yield context.wait_for_external_event("Extra")
        return CARRIED
    yield context.wait_for_external_event("Go")
    context.continue_as_new("next")
    return None


INDEX = index_app(app)
