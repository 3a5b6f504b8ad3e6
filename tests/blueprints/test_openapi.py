"""The OpenAPI document: generated from what the app registers, served at /api/openapi.json."""

from __future__ import annotations

import json
import re
from typing import Any

import azure.functions as func
import pytest
import schemathesis
from pydantic import BaseModel

import function_app
from blueprints.http_input import JsonBody, endpoint
from blueprints.openapi import openapi_document
from devhost.app.loader import index_app
from devhost.testing import DurableTestHost
from devhost.web.routes import function_route

DOCUMENT = openapi_document(function_app.app)


def _registered_operations() -> set[tuple[str, str]]:
    """(method, path) of every HTTP function, as the local host indexes and serves them."""
    index = index_app(function_app.app)
    return {
        (
            method.lower(),
            "/" + re.sub(r"\{([^}:?=*]+)[^}]*\}", r"{\1}", function_route(info, "api")),
        )
        for info in index.http
        for method in info.methods
    }


def test_every_registered_route_is_in_the_document() -> None:
    """Each method and route the host serves is an operation of the document, and no more."""
    documented = {(method, path) for path, item in DOCUMENT["paths"].items() for method in item}

    assert len(_registered_operations()) > 40
    assert documented == _registered_operations()


def test_the_document_is_openapi_3_1_that_a_client_can_load() -> None:
    """schemathesis reads it, every operation and reference included."""
    schema = schemathesis.openapi.from_dict(DOCUMENT)

    operations = [result.ok() for result in schema.get_all_operations()]

    assert DOCUMENT["openapi"] == "3.1.0"
    assert len(operations) == len(_registered_operations())


def _operation(method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = DOCUMENT["paths"][path][method]
    return operation


def test_parameters_bodies_answers_and_errors_come_from_the_declarations() -> None:
    cancel = _operation("post", "/api/orders/{orderId}/cancel")
    listing = _operation("get", "/api/instances")
    patch = _operation("patch", "/api/documents/{id}")

    order_id = next(p for p in cancel["parameters"] if p["name"] == "orderId")
    assert order_id["in"] == "path" and order_id["schema"]["maxLength"] == 100
    assert order_id["schema"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
    body = cancel["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/CancelOrderEvent"}
    assert set(cancel["responses"]) == {
        "202",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "415",
        "500",
    }
    assert cancel["security"] == [{"functionKey": []}, {"functionKeyHeader": []}]
    error = cancel["responses"]["409"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
    statuses = next(p for p in listing["parameters"] if p["name"] == "runtimeStatus")
    assert (statuses["in"], statuses["style"], statuses["explode"]) == ("query", "form", False)
    headers = {p["name"] for p in patch["parameters"] if p["in"] == "header"}
    assert headers == {"If-Match", "Idempotency-Key", "X-Actor"}


def test_every_route_taking_an_idempotency_key_documents_its_422() -> None:
    """A key reused for a different request answers 422; each route that reads one says so."""
    keyed = [
        (method, path, operation)
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    ]

    assert len(keyed) == 8
    assert [(m, p) for m, p, operation in keyed if "422" not in operation["responses"]] == []


def test_security_follows_the_registered_auth_level() -> None:
    """Anonymous routes need nothing; a function-level route takes a key, as registered."""

    class Thing(BaseModel):
        name: str

    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="things", methods=["POST"])
    @endpoint(body=JsonBody(Thing), responses={201: Thing})
    async def make_thing(req: func.HttpRequest) -> func.HttpResponse:
        """Make a thing."""
        return func.HttpResponse(status_code=201)

    @app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    @endpoint(responses={200: None})
    async def health(req: func.HttpRequest) -> func.HttpResponse:
        """Say it is up."""
        return func.HttpResponse()

    document = openapi_document(app, route_prefix="api")

    make = document["paths"]["/api/things"]["post"]
    assert make["security"] == [{"functionKey": []}, {"functionKeyHeader": []}]
    assert "401" in make["responses"]
    assert document["paths"]["/api/health"]["get"]["security"] == []
    assert document["components"]["securitySchemes"]["functionKey"]["name"] == "code"
    openapi_route = DOCUMENT["paths"]["/api/openapi.json"]["get"]
    assert openapi_route["security"] == []


def test_a_function_without_a_declaration_fails_the_generation() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="bare", methods=["GET"])
    async def bare(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse()

    with pytest.raises(ValueError, match="'bare' has no @endpoint"):
        openapi_document(app, route_prefix="api")


def test_a_route_value_the_declaration_misses_fails_the_generation() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="things/{thingId}", methods=["GET"])
    @endpoint(responses={200: None})
    async def read_thing(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse()

    with pytest.raises(ValueError, match=r"names \['thingId'\]"):
        openapi_document(app, route_prefix="api")


async def test_the_document_is_served_anonymously_at_api_openapi_json(
    async_durable_host: DurableTestHost,
) -> None:
    client = await async_durable_host.http()

    response = await client.get("/api/openapi.json")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(await response.text()) == DOCUMENT
