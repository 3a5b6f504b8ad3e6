"""A timer function for the host-process tests: each run appends what it received to the file
named by TIMER_TEST_OUT and starts a ``hello`` orchestration through its durable client."""

import json
import os

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer", run_on_startup=True)
@app.durable_client_input(client_name="client")
async def tick(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    instance_id = await client.start_new("hello")
    seen = {"pastDue": timer.past_due, "status": timer.schedule_status, "instance": instance_id}
    with open(os.environ["TIMER_TEST_OUT"], "a", encoding="utf-8") as out:
        out.write(json.dumps(seen) + "\n")


@app.orchestration_trigger(context_name="context")
def hello(context: df.DurableOrchestrationContext):
    return "hello"
    yield  # an orchestrator is a generator
