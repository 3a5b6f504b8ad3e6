"""Test harness for the HTTP endpoints: an in-memory durable client and a caller for the API.

The fake client subclasses the SDK's ``DurableOrchestrationClient`` built from a real binding
payload (protocol notes §6.1), so ``create_check_status_response`` and the management URLs are
the SDK's own; only the calls that would reach the host are replaced, answering the way the
SDK does for each host status (exceptions with the SDK's messages included).
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlencode

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from azure.durable_functions.models.PurgeHistoryResult import PurgeHistoryResult

import function_app

ORIGIN = "http://localhost:7071"
WEBHOOK = f"{ORIGIN}/runtime/webhooks/durabletask"
QUERY = "taskHub=DurableWorkflows&connection=Storage&code=SYSTEMKEY"
RUNNING_STATES = {"Running", "Pending", "Suspended", "ContinuedAsNew"}


def binding_payload(rpc_base_url: str = "http://127.0.0.1:17071/durabletask/") -> str:
    """The durable client binding string the host passes to a client function."""
    instance = f"{WEBHOOK}/instances/INSTANCEID"
    return json.dumps(
        {
            "taskHubName": "DurableWorkflows",
            "connectionName": None,
            "creationUrls": {
                "createNewInstancePostUri": f"{WEBHOOK}/orchestrators/{{functionName}}"
                "[/{instanceId}]?code=SYSTEMKEY",
                "createAndWaitOnNewInstancePostUri": f"{WEBHOOK}/orchestrators/{{functionName}}"
                "[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval="
                "{intervalInSeconds}&code=SYSTEMKEY",
            },
            "managementUrls": {
                "id": "INSTANCEID",
                "statusQueryGetUri": f"{instance}?{QUERY}",
                "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{QUERY}",
                "terminatePostUri": f"{instance}/terminate?reason={{text}}&{QUERY}",
                "rewindPostUri": f"{instance}/rewind?reason={{text}}&{QUERY}",
                "purgeHistoryDeleteUri": f"{instance}?{QUERY}",
                "restartPostUri": f"{instance}/restart?{QUERY}",
                "suspendPostUri": f"{instance}/suspend?reason={{text}}&{QUERY}",
                "resumePostUri": f"{instance}/resume?reason={{text}}&{QUERY}",
            },
            "baseUrl": WEBHOOK,
            "requiredQueryStringParameters": "code=SYSTEMKEY",
            "rpcBaseUrl": rpc_base_url,
            "httpBaseUrl": None,
        }
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeDurableClient(df.DurableOrchestrationClient):
    """A durable client whose instances live in a dict, answering as the SDK does."""

    def __init__(self, rpc_base_url: str = "http://127.0.0.1:17071/durabletask/") -> None:
        super().__init__(binding_payload(rpc_base_url))
        self.instances: dict[str, dict[str, Any]] = {}
        self.started: list[tuple[str, str, Any]] = []
        self.raised: list[tuple[str, str, Any]] = []
        self.commands: list[tuple[str, str, str]] = []
        self.purged: list[str] = []

    def add_instance(
        self,
        instance_id: str,
        name: str = "hello_sequence",
        status: str = "Running",
        input_: Any = None,
        history: list[dict[str, Any]] | None = None,
    ) -> None:
        """Put an instance in place as the status API would show it."""
        self.instances[instance_id] = {
            "name": name,
            "instanceId": instance_id,
            "runtimeStatus": status,
            # The status API shows a Python-started input as the JSON text (protocol §2.6).
            "input": None if input_ is None else json.dumps(input_),
            "output": None,
            "customStatus": None,
            "createdTime": _now(),
            "lastUpdatedTime": _now(),
            "historyEvents": history or [],
        }

    async def start_new(
        self,
        orchestration_function_name: str,
        instance_id: str | None = None,
        client_input: Any = None,
        version: str | None = None,
    ) -> str:
        instance_id = instance_id or uuid.uuid4().hex
        existing = self.instances.get(instance_id)
        if existing and existing["runtimeStatus"] in RUNNING_STATES:
            # The host answers 500 and the SDK raises Exception(body).
            raise Exception(
                {
                    "Message": "Something went wrong while processing your request",
                    "ExceptionMessage": "An Orchestration instance with the status "
                    f"{existing['runtimeStatus']} already exists.",
                }
            )
        json.dumps(client_input)  # what the SDK does first: fails on non-JSON input
        self.add_instance(instance_id, orchestration_function_name, "Pending", client_input)
        self.started.append((orchestration_function_name, instance_id, client_input))
        return instance_id

    async def get_status(
        self,
        instance_id: str,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = False,
    ) -> DurableOrchestrationStatus:
        raw = self.instances.get(instance_id)
        if raw is None:
            # A 404 has an empty body, which the SDK turns into a falsy status.
            return DurableOrchestrationStatus.from_json("")
        body = dict(raw)
        if not show_history:
            body.pop("historyEvents")
        return DurableOrchestrationStatus.from_json(body)

    async def raise_event(
        self,
        instance_id: str,
        event_name: str,
        event_data: Any = None,
        task_hub_name: str | None = None,
        connection_name: str | None = None,
    ) -> None:
        raw = self.instances.get(instance_id)
        if raw is None:
            raise Exception(f"No instance with ID {instance_id} found.")
        if raw["runtimeStatus"] not in RUNNING_STATES:
            raise Exception(f"Instance with ID {instance_id} is gone: either completed or failed")
        json.dumps(event_data)
        self.raised.append((instance_id, event_name, event_data))

    async def _command(self, command: str, instance_id: str, reason: str, new_status: str) -> None:
        raw = self.instances.get(instance_id)
        if raw is None:
            raise Exception(f"No instance with ID '{instance_id}' found.")
        if raw["runtimeStatus"] not in RUNNING_STATES:
            return  # the host answers 410, which the SDK accepts silently
        raw["runtimeStatus"] = new_status
        self.commands.append((command, instance_id, reason))

    async def terminate(self, instance_id: str, reason: str) -> None:
        await self._command("terminate", instance_id, reason, "Terminated")

    async def suspend(self, instance_id: str, reason: str) -> None:
        await self._command("suspend", instance_id, reason, "Suspended")

    async def resume(self, instance_id: str, reason: str) -> None:
        await self._command("resume", instance_id, reason, "Running")

    async def purge_instance_history(self, instance_id: str) -> PurgeHistoryResult:
        if self.instances.pop(instance_id, None) is None:
            return PurgeHistoryResult(instancesDeleted=0)
        self.purged.append(instance_id)
        return PurgeHistoryResult(instancesDeleted=1)


@functools.cache
def _indexed_functions() -> dict[str, Any]:
    app = function_app.app
    # get_functions() remembers the names it has seen and refuses to index twice; clear that
    # memory around our call so other tests (and the local host) can index the app again.
    app.functions_bindings = None
    try:
        return {fn.get_function_name(): fn for fn in app.get_functions()}
    finally:
        app.functions_bindings = None


def user_function(name: str) -> Any:
    """The callable the worker would invoke for the app's function ``name``."""
    return _indexed_functions()[name].get_user_function()


@functools.cache
def _http_functions() -> list[tuple[re.Pattern[str], set[str], Any]]:
    routes = []
    for fn in _indexed_functions().values():
        trigger = fn.get_trigger()
        if trigger is None or trigger.get_binding_name() != "httpTrigger":
            continue
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", trigger.route)
        methods = {str(getattr(m, "value", m)).upper() for m in trigger.methods}
        routes.append((re.compile(f"^{pattern}$"), methods, fn.get_user_function()))
    return routes


def _route(method: str, path: str) -> tuple[Any, dict[str, str]]:
    for pattern, methods, user_function in _http_functions():
        match = pattern.match(path)
        if match and method in methods:
            # The host hands route values to the function URL-decoded.
            return user_function, {key: unquote(value) for key, value in match.groupdict().items()}
    raise AssertionError(f"No function serves {method} /api/{path}")


@dataclass
class ApiResponse:
    """What a caller of the HTTP API sees."""

    status: int
    headers: dict[str, str]  # names lower-cased
    body: Any

    @property
    def error(self) -> dict[str, Any]:
        """The ``error`` object, after checking the one error shape every endpoint uses."""
        assert isinstance(self.body, dict) and set(self.body) == {"error"}, self.body
        error: dict[str, Any] = self.body["error"]
        assert set(error) - {"correlationId"} == {"code", "message", "details"}, error
        assert isinstance(error["message"], str) and error["message"]
        assert all("field" in detail for detail in error["details"]), error
        return error

    @property
    def error_fields(self) -> list[str]:
        """The fields the error's details name."""
        return [detail["field"] for detail in self.error["details"]]


class Api:
    """Calls the app's HTTP functions the way the host routes a request to them."""

    def __init__(self, client: FakeDurableClient) -> None:
        self.client = client

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        """Send ``method {ORIGIN}/api/{path}``; ``body`` is bytes (as is) or a JSON value."""
        user_function, route_params = _route(method.upper(), path)
        if isinstance(body, bytes):
            raw = body
        else:
            raw = b"" if body is None else json.dumps(body).encode()
        req = func.HttpRequest(
            method=method.upper(),
            url=f"{ORIGIN}/api/{path}" + (f"?{urlencode(params)}" if params else ""),
            headers=headers or {"Content-Type": "application/json"},
            params=params or {},
            route_params=route_params,
            body=raw,
        )
        response: func.HttpResponse = await user_function.client_function(req, client=self.client)
        response_headers = {key.lower(): value for key, value in response.headers.items()}
        content_type = response_headers.get("content-type") or response.mimetype
        assert content_type.startswith("application/json"), content_type
        text = response.get_body()
        return ApiResponse(
            status=response.status_code,
            headers=response_headers,
            body=json.loads(text) if text else None,
        )
