"""The benchmark's app: the shapes of Microsoft's published Durable Functions benchmarks."""

import azure.durable_functions as df
import azure.functions as func

from blueprints import retention

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def hello_sequence5(context: df.DurableOrchestrationContext):
    results = []
    for city in ("Tokyo", "Seattle", "London", "Paris", "Rome"):
        results.append((yield context.call_activity("say_hello", city)))
    return results


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    count = context.get_input()
    results = yield context.task_all(
        [context.call_activity("say_hello", str(i)) for i in range(count)]
    )
    return len(results)


@app.orchestration_trigger(context_name="context")
def event_counter(context: df.DurableOrchestrationContext):
    seen = 0
    while True:
        yield context.wait_for_external_event("ping")
        seen += 1
        context.set_custom_status(seen)
        if seen >= context.get_input():
            return seen


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}!"


# The app's retention job, for the long run with retention on (bench/run.py --long-run).
for blueprint in retention.BLUEPRINTS:
    app.register_functions(blueprint)
