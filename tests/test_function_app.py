"""The composition root: every blueprint is registered and every function indexes cleanly.

A blueprint left out of function_app.py deploys without error and silently serves nothing;
these tests make that, and malformed bindings, fail before deployment.
"""

import importlib
import inspect
import keyword
import pkgutil
import re
import typing
from types import ModuleType
from typing import Any

import azure.durable_functions as df
import pytest

import blueprints
import function_app
from models.registry import registered_workflows

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"}
DURABLE_TRIGGERS = {"orchestrationTrigger", "activityTrigger", "entityTrigger"}


def _index_app() -> list[Any]:
    app = function_app.app
    # get_functions() remembers the names it has seen and refuses to index twice; clear that
    # memory around our call so other tests (and the local host) can index the app again.
    app.functions_bindings = None
    try:
        return list(app.get_functions())
    finally:
        app.functions_bindings = None


FUNCTIONS = _index_app()


def _blueprint_modules() -> list[ModuleType]:
    modules = []
    for info in pkgutil.walk_packages(blueprints.__path__, prefix="blueprints."):
        module = importlib.import_module(info.name)
        if isinstance(getattr(module, "bp", None), df.Blueprint):
            modules.append(module)
    return modules


def _bindings(fn: Any) -> list[dict[str, Any]]:
    return [
        {key: getattr(value, "value", value) for key, value in binding.get_dict_repr().items()}
        for binding in fn.get_bindings()
    ]


def _trigger(fn: Any) -> dict[str, Any]:
    triggers = [b for b in _bindings(fn) if str(b["type"]).endswith("Trigger")]
    assert len(triggers) == 1, f"{fn.get_function_name()} needs exactly one trigger"
    return triggers[0]


BLUEPRINT_MODULES = _blueprint_modules()


def test_blueprints_are_found():
    """The discovery below sees the blueprint modules (guards against an empty parametrize)."""
    names = {module.__name__ for module in BLUEPRINT_MODULES}

    assert {"blueprints.http_starter", "blueprints.events", "blueprints.instances"} <= names


@pytest.mark.parametrize("module", BLUEPRINT_MODULES, ids=lambda module: module.__name__)
def test_every_blueprint_is_registered(module):
    """Each function of each blueprint module is one the app serves."""
    registered = {id(fn) for fn in FUNCTIONS}
    own = [builder._function for builder in module.bp._function_builders]

    assert own, f"{module.__name__} defines a blueprint without functions"
    missing = [fn.get_function_name() for fn in own if id(fn) not in registered]
    assert not missing, f"{module.__name__} is not registered in function_app.py: {missing}"


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda fn: fn.get_function_name())
def test_parameters_match_bindings(fn):
    """Each binding names a parameter and each parameter a binding, as the worker requires."""
    parameters = set(inspect.signature(fn.get_user_function()).parameters)
    bound = {b["name"] for b in _bindings(fn) if b["name"] != "$return"}

    assert parameters == bound
    for name in bound:
        assert name.isidentifier() and not keyword.iskeyword(name)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda fn: fn.get_function_name())
def test_annotations_resolve_to_types(fn):
    """The worker resolves annotations with get_type_hints and wants plain types."""
    hints = typing.get_type_hints(fn.get_user_function())

    for name, hint in hints.items():
        assert isinstance(hint, type), f"{fn.get_function_name()}: {name} is {hint!r}"


HTTP_FUNCTIONS = [fn for fn in FUNCTIONS if _trigger(fn)["type"] == "httpTrigger"]
# The HTTP functions that may be called without a key; docs/security.md says why for each.
ANONYMOUS_FUNCTIONS: frozenset[str] = frozenset()


@pytest.mark.parametrize("fn", HTTP_FUNCTIONS, ids=lambda fn: fn.get_function_name())
def test_http_functions_are_well_formed(fn):
    """HTTP functions have a route, explicit methods, a key (unless documented anonymous),
    an http output and are async."""
    trigger = _trigger(fn)
    types = [b["type"] for b in _bindings(fn)]

    assert re.fullmatch(r"[A-Za-z0-9_\-]+(/([A-Za-z0-9_\-]+|\{\w+\}))*", trigger["route"])
    assert trigger["methods"] and {str(m).upper() for m in trigger["methods"]} <= HTTP_METHODS
    anonymous = fn.get_function_name() in ANONYMOUS_FUNCTIONS
    assert str(trigger["authLevel"]).upper() == ("ANONYMOUS" if anonymous else "FUNCTION")
    assert "http" in types
    assert inspect.iscoroutinefunction(fn.get_user_function())


def test_no_two_http_functions_share_a_route_and_method():
    """Each (method, route) pair is served by one function only."""
    pairs = [
        (str(method).upper(), re.sub(r"\{\w+\}", "{}", _trigger(fn)["route"]))
        for fn in HTTP_FUNCTIONS
        for method in _trigger(fn)["methods"]
    ]

    assert len(pairs) == len(set(pairs))


def test_documented_routes_are_served():
    """The endpoints the API promises exist with their methods."""
    served = {
        (str(method).upper(), _trigger(fn)["route"])
        for fn in HTTP_FUNCTIONS
        for method in _trigger(fn)["methods"]
    }

    assert served >= {
        ("POST", "orchestrators/{name}"),
        ("POST", "orchestrators/{name}/{instanceId}"),
        ("POST", "instances/{instanceId}/events/{eventName}"),
        ("GET", "instances"),
        ("GET", "instances/{instanceId}"),
        ("POST", "instances/{instanceId}/terminate"),
        ("POST", "instances/{instanceId}/suspend"),
        ("POST", "instances/{instanceId}/resume"),
        ("DELETE", "instances/{instanceId}"),
    }


def test_durable_function_names_are_unique_ignoring_case():
    """The durable runtime matches orchestrator and activity names case-insensitively."""
    names = [
        (_trigger(fn)["type"], fn.get_function_name().lower())
        for fn in FUNCTIONS
        if _trigger(fn)["type"] in DURABLE_TRIGGERS
    ]

    assert len(names) == len(set(names))


def test_every_registered_workflow_is_an_orchestrator_of_the_app():
    """The starter can only offer orchestrators that exist."""
    orchestrators = {
        fn.get_function_name().lower()
        for fn in FUNCTIONS
        if _trigger(fn)["type"] == "orchestrationTrigger"
    }

    workflows = {spec.name.lower() for spec in registered_workflows()}

    assert workflows
    assert workflows <= orchestrators


def test_sample_workflow_is_served():
    """The greetings sample's orchestrator and activity are both part of the app."""
    kinds = {fn.get_function_name(): _trigger(fn)["type"] for fn in FUNCTIONS}

    assert kinds["hello_sequence"] == "orchestrationTrigger"
    assert kinds["say_hello"] == "activityTrigger"
