"""An app laid out like the Durable Task Scheduler's Python samples: a FunctionApp for the HTTP
routes and a durable Blueprint for orchestrations, activities and an entity.

Its host.json and local.settings.json are written by the test, in each sample's shape.
"""

import azure.durable_functions as df
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
bp = df.Blueprint()

CITIES = ["Tokyo", "Seattle", "London"]


@bp.orchestration_trigger(context_name="context")
def chaining(context: df.DurableOrchestrationContext):
    greetings = []
    for city in CITIES:
        greetings.append((yield context.call_activity("greet", city)))
    return greetings


@bp.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext):
    scores = yield context.task_all([context.call_activity("score", city) for city in CITIES])
    return {"items": len(scores), "total": sum(scores)}


@bp.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    child = yield context.call_sub_orchestrator("chaining", instance_id=f"{context.instance_id}-c")
    return {"child": child}


@bp.orchestration_trigger(context_name="context")
def counting(context: df.DurableOrchestrationContext):
    counter = df.EntityId("counter", context.instance_id)
    yield context.call_entity(counter, "add", 10)
    yield context.call_entity(counter, "add", 20)
    return (yield context.call_entity(counter, "get"))


@bp.activity_trigger(input_name="city")
def greet(city: str) -> str:
    return f"Hello {city}!"


@bp.activity_trigger(input_name="city")
def score(city: str) -> int:
    return len(city)


@bp.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
    elif context.operation_name == "get":
        context.set_result(value)
    context.set_state(value)


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"])
    return client.create_check_status_response(req, instance_id)


app.register_functions(bp)
