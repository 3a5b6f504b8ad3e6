from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()


@bp.route(route="orchestrators/{functionName}")
@bp.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client):
    function_name = req.route_params.get("functionName")
    instance_id = await client.start_new(function_name)
    return client.create_check_status_response(req, instance_id)


@bp.orchestration_trigger(context_name="context")
def hello_orchestrator(context: df.DurableOrchestrationContext):
    result1 = yield context.call_activity("hello", "Tokyo")
    result2 = yield context.call_activity("hello", "Seattle")
    result3 = yield context.call_activity("hello", "London")
    return [result1, result2, result3]


@bp.orchestration_trigger(context_name="context")
def approval_orchestrator(context: df.DurableOrchestrationContext):
    deadline = context.current_utc_datetime + timedelta(days=30)
    timeout_task = context.create_timer(deadline)
    approval_task = context.wait_for_external_event("Approval")
    winner = yield context.task_any([approval_task, timeout_task])
    if winner == approval_task:
        timeout_task.cancel()
        approved = yield context.call_activity("hello", "approver")
        return "Approved by " + approved
    return "Expired"


@bp.activity_trigger(input_name="city")
def hello(city: str):
    return f"Hello {city}!"
