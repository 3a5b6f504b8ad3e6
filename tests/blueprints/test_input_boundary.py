"""The one input boundary: every HTTP function declares what it reads and reads only that."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from api_harness import _indexed_functions

from blueprints.http_input import endpoint_of

BLUEPRINTS = Path(__file__).resolve().parents[2] / "blueprints"
# What a handler could read from the request without the boundary checking it first.
_RAW_READS = {"route_params", "params", "headers", "get_body", "get_json", "form", "files"}


def _raw_reads(path: Path, root: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in _RAW_READS
            and isinstance(node.value, ast.Name)
            and node.value.id == "req"
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno} req.{node.attr}")
    return found


# The boundary itself, and the App Service Authentication headers: the platform sets those (it
# drops any a client sends) and blueprints.identity reads and checks them (401 when unreadable).
_READERS = {"http_input.py", "identity.py"}


def test_handlers_read_the_request_only_through_the_boundary() -> None:
    """No module but the boundary touches req.route_params, .params, .headers or the body."""
    modules = [p for p in BLUEPRINTS.rglob("*.py") if p.name not in _READERS]
    offenders = [read for path in modules for read in _raw_reads(path, BLUEPRINTS.parent)]

    assert offenders == []


def test_the_walk_finds_a_raw_read(tmp_path: Path) -> None:
    """The check above is not vacuous: it sees a handler that reads a header itself."""
    module = tmp_path / "handler.py"
    module.write_text("def f(req):\n    return req.headers.get('X-Actor')\n")

    assert _raw_reads(module, tmp_path) == ["handler.py:2 req.headers"]


@pytest.mark.parametrize(
    "name",
    sorted(
        name
        for name, function in _indexed_functions().items()
        if (trigger := function.get_trigger()) is not None
        and trigger.get_binding_name() == "httpTrigger"
    ),
)
def test_every_http_function_declares_its_input(name: str) -> None:
    """Each HTTP function is wrapped by @endpoint, so its request is checked before it runs."""
    function = _indexed_functions()[name]

    contract = endpoint_of(function.get_user_function())

    assert contract is not None, f"{name} has no @endpoint declaration"
    assert contract.responses, f"{name} declares no success response"
