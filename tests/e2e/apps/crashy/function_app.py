"""A small app for crash tests: a slow chain whose every step leaves a mark in a file.

The marks show which steps ran (at least once) and the orchestration's output shows that the
result is complete after the host was killed mid-way and started again.
"""

import os
import time

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{name}/{instanceId}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start an orchestration with the request body as input."""
    instance_id = await client.start_new(
        req.route_params["name"], req.route_params["instanceId"], req.get_json()
    )
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def slow_chain(context: df.DurableOrchestrationContext):
    steps = context.get_input()["steps"]
    results = []
    for step in range(steps):
        results.append((yield context.call_activity("slow_step", step)))
    approval = yield context.wait_for_external_event("Approve")
    return {"results": results, "approval": approval}


@app.activity_trigger(input_name="step")
def slow_step(step: int) -> int:
    with open(os.environ["CRASHY_MARKS"], "a", encoding="utf-8") as marks:
        marks.write(f"{step}\n")
    time.sleep(float(os.environ.get("CRASHY_STEP_SECONDS", "0.2")))
    return step * step
