"""schemathesis, driven by the served OpenAPI document, against every operation of the app.

Each operation gets valid requests (some aimed at resources that exist, so they reach past the
404s) and invalid ones (schemathesis's negative mode). Every answer is held to the rules of
``tests.fuzz.checks`` and, when the app answered it, to the document itself: its status is one
the operation declares, and its body matches the declared model.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.checks import HOST_BARE_4XX, HOST_PARSER_400, Tally
from tests.fuzz.conftest import LONG, FuzzHost, budget
from tests.fuzz.test_hostile import _KNOWN_KIND

pytestmark = [pytest.mark.azurite, pytest.mark.host]

_VALUE = re.compile(r"\{(\w+)\}")
_CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]


def _known_values(path: str, known: dict[str, str]) -> dict[str, Any]:
    kind = next((k for prefix, k in _KNOWN_KIND.items() if path.startswith(prefix)), "instance")
    values: dict[str, Any] = {"name": "hello_sequence", "level": 1}
    for name in _VALUE.findall(path):
        values.setdefault(name, known[kind])
    return values


def _from_host(response: requests.Response) -> bool:
    media_type = response.headers.get("Content-Type", "").split(";")[0]
    bare = not response.content and response.status_code in HOST_BARE_4XX
    return bare or (response.status_code == 400 and media_type == HOST_PARSER_400)


def test_every_operation_against_its_document(
    fuzz_host: FuzzHost, tally: Tally, known: dict[str, str]
) -> None:
    """Positive and negative requests for every operation; no rule broken, no drift."""
    document = fuzz_host.http.get(f"{fuzz_host.base_url}/api/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    problems: list[str] = []

    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=fuzz_host.base_url, session=fuzz_host.http, timeout=60)
        what = f"{case.method} {response.request.url}"
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        route = case.operation.path
        problems.extend(
            f"{what}: {problem}"
            for problem in tally.record(
                case.method,
                route,
                what,
                response.status_code,
                response.content,
                media_type=media_type,
            )
        )
        if _from_host(response):
            return  # the host answered before the app: the document describes the app
        try:
            case.validate_response(response, checks=_CONFORMANCE)
        except Exception as failure:  # schemathesis raises a group of check failures
            problems.append(f"{what} -> {response.status_code}: {failure}"[:600])

    for operation in operations:
        strategies = [
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        ]
        if _VALUE.search(operation.path):
            values = _known_values(operation.path, known)
            strategies.append(
                operation.as_strategy(GenerationMode.POSITIVE, path_parameters=values)
            )
        for strategy in strategies:

            @settings(
                max_examples=budget(4, 40),
                deadline=None,
                database=None,
                derandomize=not LONG,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                call(case)

            try:
                run()
            except Unsatisfiable:
                continue  # nothing to negate (e.g. an operation without inputs)

    assert problems == [], "\n".join(problems[:20])
    fuzz_host.assert_healthy()
