"""The one error shape: what a caller sees when a handler fails in an unplanned way."""

import json

import azure.functions as func

from blueprints.http_errors import ApiError, json_errors


async def test_unexpected_exception_answers_500_without_leaking_it(api, client, monkeypatch):
    """A backend fault answers 500 in the error shape and keeps its internals out of the body."""

    async def host_down(*args, **kwargs):
        raise RuntimeError("connection refused to 127.0.0.1:17071 secret-detail")

    monkeypatch.setattr(client, "get_status", host_down)

    response = await api("GET", "instances/greet-1")

    assert response.status == 500
    assert response.error["code"] == "InternalError"
    assert "secret-detail" not in json.dumps(response.body)
    correlation_id = response.error["correlationId"]
    assert correlation_id in response.error["message"]


async def test_api_error_keeps_its_status_and_headers():
    """An ApiError raised by a handler becomes its response, headers included."""

    @json_errors
    async def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise ApiError(409, "Conflict", "Busy.", headers={"Location": "http://x/status"})

    response = await handler(func.HttpRequest("GET", "http://x/api/y", body=b""))

    assert response.status_code == 409
    assert response.headers["Location"] == "http://x/status"
    assert json.loads(response.get_body())["error"]["code"] == "Conflict"


async def test_whitespace_body_reads_as_empty_object(api, client):
    """A body of only whitespace is treated like no body: the model's defaults apply."""
    response = await api("POST", "start-approval", body=b"  \n")

    assert response.status == 202
    assert client.started[0][2] == {"timeoutSeconds": 300}


async def test_a_boolean_for_a_number_is_400_naming_the_field(api, client):
    """JSON true is not 1: a number field refuses a boolean (it started a 1-second approval)."""
    response = await api("POST", "start-approval", {"timeoutSeconds": True})

    assert response.status == 400
    assert response.error_fields == ["timeoutSeconds"]
    assert client.started == []
