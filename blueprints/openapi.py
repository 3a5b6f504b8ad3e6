"""The OpenAPI 3.1 document of the HTTP API, generated from what the app registers.

Nothing here lists routes: each path, method and security requirement comes from a
registered HTTP trigger (its route, methods and auth level), and each parameter, body and
answer from the function's ``@endpoint`` declaration (``blueprints.http_input``) and the
pydantic models it names. A function without a declaration, or whose route names a value the
declaration does not, fails the generation (and so a test) rather than leaving a hole.
``GET /api/openapi.json`` serves the document; :func:`blueprint_for` makes that route for a
composed app.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from blueprints.http_input import Endpoint, IntParam, JsonBody, TextBody, endpoint, endpoint_of
from models.ids import ID_PATTERN, MAX_LENGTHS
from models.responses import ErrorBody, OpenApiDocument

__all__ = ["OPENAPI_ROUTE", "blueprint_for", "http_functions", "openapi_document"]

OPENAPI_ROUTE = "openapi.json"
_APP_ROOT = Path(__file__).resolve().parents[1]
_TEMPLATE_VALUE = re.compile(r"\{([^}:?=*]+)[^}]*\}")
_SECURITY_SCHEMES = {
    "functionKey": {
        "type": "apiKey",
        "in": "query",
        "name": "code",
        "description": "A function key, host key or the master key.",
    },
    "functionKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
        "description": "A function key, host key or the master key.",
    },
}
# What each auth level accepts (Azure Functions: function and admin levels both take keys in
# ?code= or x-functions-key; admin takes only the master key).
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "anonymous": [],
    "function": [{"functionKey": []}, {"functionKeyHeader": []}],
    "admin": [{"functionKey": []}, {"functionKeyHeader": []}],
}
_AUTO_ERRORS = {
    400: "The request is invalid; the details name each field.",
    413: "The body is larger than the route accepts.",
    415: "The body is compressed, or in a charset other than UTF-8.",
    500: "The server failed; the body carries the correlation ID the log holds the cause under.",
}


def _route_prefix(app_root: Path) -> str:
    try:
        host = json.loads((app_root / "host.json").read_text())
    except (OSError, ValueError):
        return "api"
    prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return str(prefix).strip("/")


def http_functions(app: func.FunctionApp) -> list[Any]:
    """Return the app's HTTP-triggered functions, as the worker indexes them."""
    # get_functions() remembers the names it indexed and refuses a second call; the worker and
    # the local host index the app too, so the memory is left as it was found.
    remembered = app.functions_bindings
    app.functions_bindings = None
    try:
        functions = app.get_functions()
    finally:
        app.functions_bindings = remembered
    return [f for f in functions if (t := f.get_trigger()) and t.type == "httpTrigger"]


def _value(enum_or_str: Any) -> str:
    return str(getattr(enum_or_str, "value", enum_or_str))


def _tag(handler: Any) -> str:
    parts = handler.__module__.split(".")
    return parts[1] if len(parts) > 2 else parts[-1]


_Pair = tuple[type[BaseModel], JsonSchemaMode]


class _Schemas:
    """The models a document names, rendered once into ``components.schemas``."""

    def __init__(self, pairs: Iterable[_Pair]) -> None:
        refs, schema = models_json_schema(
            list(dict.fromkeys(pairs)), ref_template="#/components/schemas/{model}", by_alias=True
        )
        self._refs = refs
        self.components: dict[str, Any] = schema.get("$defs", {})

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(self._refs[(model, mode)])

    def of(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        name = self._refs[(model, mode)]["$ref"].rsplit("/", 1)[-1]
        schema: dict[str, Any] = self.components[name]
        return schema


def _models(contract: Endpoint) -> list[_Pair]:
    pairs: list[_Pair] = [(ErrorBody, "serialization")]
    if contract.query is not None:
        pairs.append((contract.query, "validation"))
    if isinstance(contract.body, JsonBody) and contract.body.model is not None:
        pairs.append((contract.body.model, "validation"))
    pairs += [(model, "serialization") for model in contract.responses.values() if model]
    return pairs


def _query_value_schema(schema: dict[str, Any]) -> dict[str, Any]:
    # A query value is absent, never null: drop the null branch pydantic adds to Optional.
    schema = {k: v for k, v in schema.items() if k not in ("default", "title")}
    options = [s for s in schema.pop("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        schema = {**options[0], **schema}
    elif options:
        schema["anyOf"] = options
    return schema


def _path_parameter(name: str, spec: str | IntParam) -> dict[str, Any]:
    if isinstance(spec, IntParam):
        schema: dict[str, Any] = {
            "type": "integer",
            "minimum": spec.minimum,
            "maximum": spec.maximum,
        }
        description = spec.description or "A whole number."
    else:
        schema = {
            "type": "string",
            "pattern": ID_PATTERN,
            "minLength": 1,
            "maxLength": MAX_LENGTHS[spec],
        }
        description = f"An ID ({spec}) of the grammar in models/ids.py."
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _parameters(contract: Endpoint, schemas: _Schemas) -> list[dict[str, Any]]:
    parameters = [_path_parameter(name, spec) for name, spec in contract.path.items()]
    for header in contract.headers:
        parameters.append(
            {
                "name": header.name,
                "in": "header",
                "required": False,
                "description": header.description,
                "schema": header.schema,
            }
        )
    if contract.query is not None:
        schema = schemas.of(contract.query, "validation")
        for name, prop in schema.get("properties", {}).items():
            value = _query_value_schema(prop)
            parameter: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", []),
                "schema": value,
            }
            if "description" in prop:
                parameter["description"] = prop["description"]
            if value.get("type") == "array":
                parameter.update(style="form", explode=False)  # runtimeStatus=A,B
            parameters.append(parameter)
    return parameters


def _request_body(contract: Endpoint, schemas: _Schemas) -> dict[str, Any] | None:
    body = contract.body
    if isinstance(body, TextBody):
        content = {kind: {"schema": {"type": "string"}} for kind in body.media_types}
        return {"required": True, "description": body.description, "content": content}
    if not isinstance(body, JsonBody):
        return None
    if body.model is None:
        schema: dict[str, Any] = {"description": body.description or "Any JSON value."}
        required = False
    else:
        schema = schemas.ref(body.model, "validation")
        required = any(field.is_required() for field in body.model.model_fields.values())
    described = {"required": required, "content": {"application/json": {"schema": schema}}}
    if body.description:
        described["description"] = body.description
    return described


def _responses(contract: Endpoint, auth_level: str, schemas: _Schemas) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status, model in sorted(contract.responses.items()):
        answer: dict[str, Any] = {"description": HTTPStatus(status).phrase}
        if model is not None:
            answer["description"] = (inspect.getdoc(model) or answer["description"]).split("\n")[0]
            answer["content"] = {
                "application/json": {"schema": schemas.ref(model, "serialization")}
            }
        answers[str(status)] = answer
    errors: dict[int, str] = {500: _AUTO_ERRORS[500]}
    if contract.path or contract.query or contract.headers or contract.body:
        errors[400] = _AUTO_ERRORS[400]
    if contract.body is not None:
        errors.update({413: _AUTO_ERRORS[413], 415: _AUTO_ERRORS[415]})
    for status in contract.errors:
        errors.setdefault(status, HTTPStatus(status).phrase)
    error_schema = {"application/json": {"schema": schemas.ref(ErrorBody, "serialization")}}
    for status, description in sorted(errors.items()):
        answers[str(status)] = {"description": description, "content": error_schema}
    if auth_level != "anonymous":
        # The host answers it without a body for a missing key, before the function runs; a
        # route that acts for a person answers it in the error shape without a principal.
        answers["401"] = {
            "description": "No valid key (?code= or x-functions-key), or no principal.",
            "content": error_schema,
        }
    return answers


def _contract(function: Any) -> Endpoint:
    contract = endpoint_of(function.get_user_function())
    if contract is None:
        raise ValueError(f"HTTP function '{function.get_function_name()}' has no @endpoint")
    return contract


def _operation(function: Any, schemas: _Schemas) -> dict[str, Any]:
    handler = function.get_user_function()
    contract = _contract(function)
    name = function.get_function_name()
    route = function.get_trigger().route or name
    in_route = set(_TEMPLATE_VALUE.findall(route))
    if in_route != set(contract.path):
        raise ValueError(
            f"HTTP function '{name}': route '{route}' names {sorted(in_route)}, "
            f"its @endpoint declares {sorted(contract.path)}"
        )
    auth_level = _value(function.get_trigger().auth_level).lower()
    doc = inspect.getdoc(getattr(handler, "client_function", handler)) or name
    operation: dict[str, Any] = {
        "operationId": name,
        "summary": doc.split("\n")[0],
        "tags": [_tag(getattr(handler, "client_function", handler))],
        "parameters": _parameters(contract, schemas),
        "responses": _responses(contract, auth_level, schemas),
        "security": _SECURITY.get(auth_level, _SECURITY["function"]),
    }
    body = _request_body(contract, schemas)
    if body is not None:
        operation["requestBody"] = body
    return operation


def openapi_document(app: func.FunctionApp, route_prefix: str | None = None) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the app's HTTP functions.

    Parameters
    ----------
    app : azure.functions.FunctionApp
        The composed app (``function_app.app``).
    route_prefix : str | None
        ``extensions.http.routePrefix``; read from host.json when None.

    Returns
    -------
    dict[str, Any]
        The document, JSON-ready.

    Raises
    ------
    ValueError
        When an HTTP function has no ``@endpoint`` declaration, or its route names a value the
        declaration does not.
    """
    prefix = _route_prefix(_APP_ROOT) if route_prefix is None else route_prefix.strip("/")
    functions = http_functions(app)
    schemas = _Schemas(pair for function in functions for pair in _models(_contract(function)))
    paths: dict[str, dict[str, Any]] = {}
    for function in functions:
        route = _TEMPLATE_VALUE.sub(r"{\1}", (function.get_trigger().route or "").strip("/"))
        path = "/" + "/".join(part for part in (prefix, route) if part)
        operation = _operation(function, schemas)
        for method in function.get_trigger().methods:
            paths.setdefault(path, {})[_value(method).lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Durable workflows",
            "version": "1.0.0",
            "description": "Long-running business workflows on Azure Durable Functions. Every "
            'error answers {"error": {"code", "message", "details"}}; IDs follow the '
            "grammar of models/ids.py.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas.components, "securitySchemes": _SECURITY_SCHEMES},
    }


def blueprint_for(app: func.FunctionApp) -> df.Blueprint:
    """Return the blueprint serving ``GET /api/openapi.json`` for ``app`` (anonymous)."""
    bp = df.Blueprint()

    @functools.cache
    def document() -> str:
        return json.dumps(openapi_document(app))

    @bp.route(route=OPENAPI_ROUTE, methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    @endpoint(responses={200: OpenApiDocument})
    async def openapi_json(req: func.HttpRequest) -> func.HttpResponse:
        """This API's OpenAPI 3.1 document: every route, parameter, body, answer and error."""
        return func.HttpResponse(document(), mimetype="application/json")

    return bp
