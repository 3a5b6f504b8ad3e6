"""The project's own generators against every route: IDs, headers, bodies, query strings, sizes,
concurrent duplicates, and the built-in API. No 5xx, every /api 4xx in the error shape, no
internals in any body, and the host healthy afterwards."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz import strategies as gen
from tests.fuzz.checks import Tally, real_host_500
from tests.fuzz.conftest import LONG, ORDER, FuzzHost, budget
from tests.fuzz.raw_http import send

pytestmark = [pytest.mark.azurite, pytest.mark.host]

_VALUE = re.compile(r"\{(\w+)\}")
# Which seeded resource each route value names by default (conftest.known).
_KNOWN_KIND = {
    "/api/orders/": "order",
    "/api/documents/": "document",
    "/api/batches/inputs/": "input",
    "/api/batches/": "job",
    "/api/monitors/": "monitor",
    "/api/approvals/": "approval",
    "/api/approve/": "human",
    "/api/inventory/": "sku",
    "/api/instances/": "instance",
}


def _explore(strategy: st.SearchStrategy[Any], examples: int, check: Callable[[Any], None]) -> None:
    """Run ``check`` on ``examples`` values of ``strategy`` (no shrinking: failures are kept)."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not LONG,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(value: Any) -> None:
        check(value)

    run()


class Prober:
    """Sends requests, records each answer in the tally, keeps the broken rules."""

    def __init__(self, host: FuzzHost, tally: Tally) -> None:
        self.host = host
        self.tally = tally
        self.problems: list[str] = []

    def __call__(
        self,
        method: str,
        route: str,
        target: str,
        headers: dict[str, str | bytes] | None = None,
        body: bytes = b"",
    ) -> tuple[int, bytes]:
        status, answer, media_type = send(self.host.base_url, method, target, headers, body)
        what = f"{method} {target[:200]}"
        found = self.tally.record(
            method,
            route,
            what,
            status,
            answer,
            documented_500=real_host_500(route, status, answer),
            media_type=media_type,
        )
        self.problems += [f"{what}: {problem}" for problem in found]
        return status, answer

    def assert_clean(self) -> None:
        assert self.problems == [], "\n".join(self.problems[:20])
        self.host.assert_healthy()


@pytest.fixture
def probe(fuzz_host: FuzzHost, tally: Tally) -> Prober:
    return Prober(fuzz_host, tally)


@pytest.fixture(scope="module")
def operations(fuzz_host: FuzzHost) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every route, from the served OpenAPI document."""
    document = fuzz_host.http.get(f"{fuzz_host.base_url}/api/openapi.json", timeout=30).json()
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def _defaults(path: str, known: dict[str, str]) -> dict[str, str]:
    values = {"name": "hello_sequence", "eventName": "approval_received", "level": "1"}
    kind = next((k for prefix, k in _KNOWN_KIND.items() if path.startswith(prefix)), "instance")
    for name in _VALUE.findall(path):
        values.setdefault(name, known[kind])
    if path.startswith("/api/orchestrators/"):
        values["instanceId"] = known["instance"]
    return values


def _target(path: str, values: dict[str, str]) -> str:
    return _VALUE.sub(lambda m: gen.path_segment(values[m.group(1)]), path)


def test_hostile_ids_on_every_route(
    probe: Prober, operations: list[Any], known: dict[str, str]
) -> None:
    """Every route value of every route gets dot segments, encoded slashes, entity IDs..."""
    with_values = [(m, p) for m, p, _ in operations if _VALUE.search(p)]
    assert len(with_values) >= 25

    def one(route: tuple[str, str], drawn: tuple[str, str]) -> None:
        method, path = route
        name, value = drawn
        values = {**_defaults(path, known), name: value}
        probe(method, path, _target(path, values), {"Content-Type": "application/json"}, b"{}")

    for route in with_values:
        names = st.sampled_from(_VALUE.findall(route[1]))
        strategy = st.tuples(names, gen.ids(list(known.values())))
        _explore(strategy, budget(6, 60), functools.partial(one, route))
    probe.assert_clean()


def test_hostile_headers(probe: Prober, operations: list[Any], known: dict[str, str]) -> None:
    """If-Match, Idempotency-Key, X-Actor and the continuation token, as bytes."""
    with_headers = [
        (m, p, names)
        for m, p, op in operations
        if (names := [x["name"] for x in op["parameters"] if x["in"] == "header"])
    ]
    assert len(with_headers) >= 4

    def one(route: tuple[str, str], drawn: tuple[str, bytes]) -> None:
        method, path = route
        name, value = drawn
        headers = {"Content-Type": "application/json", name: value}
        body = b'{"approved": true, "approver": "a"}'
        probe(method, path, _target(path, _defaults(path, known)), headers, body)

    for method, path, names in with_headers:
        strategy = st.tuples(st.sampled_from(names), gen.header_values())
        _explore(strategy, budget(12, 120), functools.partial(one, (method, path)))
    probe.assert_clean()


def test_hostile_bodies_and_encodings(
    probe: Prober, operations: list[Any], known: dict[str, str]
) -> None:
    """Deep nesting, numbers out of range, duplicate keys, bad UTF-8, compressed claims."""
    with_body = [(m, p) for m, p, op in operations if "requestBody" in op]
    assert len(with_body) >= 20

    def one(route: tuple[str, str], drawn: tuple[bytes, dict[str, str]]) -> None:
        method, path = route
        body, headers = drawn
        probe(method, path, _target(path, _defaults(path, known)), dict(headers), body)

    for route in with_body:
        strategy = st.tuples(gen.hostile_bodies(), gen.content_headers())
        _explore(strategy, budget(8, 80), functools.partial(one, route))
    probe.assert_clean()


def test_hostile_query_strings(probe: Prober, operations: list[Any], known: dict[str, str]) -> None:
    """Repeated names (runtimeStatus 500 times), odd escapes, newlines, long values."""
    with_query = [
        (m, p) for m, p, op in operations if any(x["in"] == "query" for x in op["parameters"])
    ]
    assert len(with_query) >= 8

    def one(route: tuple[str, str], query: str) -> None:
        method, path = route
        target = f"{_target(path, _defaults(path, known))}?{query}"
        probe(method, path, target, {"Content-Type": "application/json"}, b"{}")

    for route in with_query:
        _explore(gen.query_strings(), budget(10, 100), functools.partial(one, route))
    probe.assert_clean()


def test_sizes_at_the_host_limits(probe: Prober) -> None:
    """URL, header and body sizes around the real host's limits get its status codes."""
    route = "/api/openapi.json"
    assert probe("GET", route, route + "?x=" + "a" * 9000)[0] == 414
    assert probe("GET", route, route + "?x=" + "a" * 7000)[0] == 200
    assert probe("GET", route, route, {f"X-Extra-{n}": "v" for n in range(120)})[0] == 431
    assert probe("GET", route, route, {f"X-Extra-{n}": "v" for n in range(90)})[0] == 200
    assert probe("GET", route, route, {"X-Big": "v" * 40_000})[0] == 431
    assert probe("GET", route, route, {"X-Big": "v" * 30_000})[0] == 200
    big = b'{"orderId": "' + b"x" * (1024 * 1024) + b'"}'
    assert probe("POST", "/api/orders", "/api/orders", {}, big)[0] == 413
    probe.assert_clean()


def test_concurrent_duplicates_answer_once(probe: Prober, known: dict[str, str]) -> None:
    """The same creating request sent 20 times at once: one is taken, the rest are told so."""
    creations = [
        ("/api/orders", {**ORDER, "orderId": "dup-order-1"}),
        ("/api/documents", {"id": "dup-doc-1", "title": "T", "creator": "c", "applicationId": "a"}),
        ("/api/monitors", {"monitorId": "dup-mon-1", "url": "http://127.0.0.1:9/h"}),
        ("/api/batches", {"jobId": "dup-job-1", "dataSource": {"blobName": "inputs/fuzz-input-1"}}),
        ("/api/orchestrators/hello_sequence/dup-hello-1", {"cities": ["Rome"]}),
    ]

    def create(path: str, payload: bytes) -> int:
        route = "/api/orchestrators/{name}/{instanceId}" if "hello" in path else path
        return probe("POST", route, path, {"Content-Type": "application/json"}, payload)[0]

    for path, body in creations:
        payload = json.dumps(body).encode()
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(create, [path] * 20, [payload] * 20))
        assert set(statuses) <= {200, 202, 409}, (path, statuses)
        assert 202 in statuses, (path, statuses)
    probe.assert_clean()


def test_the_builtin_api_never_turns_a_mistake_into_a_500(
    probe: Prober, known: dict[str, str]
) -> None:
    """/runtime/webhooks/durabletask: hostile IDs, bodies and query strings, as on the real host."""
    base = "/runtime/webhooks/durabletask"
    routes = [
        ("POST", "/orchestrators/hello_sequence/{id}"),
        ("POST", "/orchestrators/{id}"),
        ("GET", "/instances/{id}"),
        ("DELETE", "/instances/{id}"),
        ("POST", "/instances/{id}/terminate"),
        ("POST", "/instances/{id}/suspend"),
        ("POST", "/instances/{id}/resume"),
        ("POST", "/instances/{id}/rewind"),
        ("POST", "/instances/{id}/restart"),
        ("POST", "/instances/{id}/raiseEvent/{id}"),
        ("GET", "/entities/inventory/{id}"),
        ("POST", "/entities/inventory/{id}"),
        ("GET", "/instances"),
        ("DELETE", "/instances"),
    ]
    values = st.tuples(
        st.sampled_from(routes),
        gen.ids([known["instance"], known["sku"]]),
        gen.hostile_bodies(),
        gen.query_strings(),
    )

    def one(drawn: tuple[tuple[str, str], str, bytes, str]) -> None:
        (method, route), value, body, query = drawn
        target = base + route.replace("{id}", gen.path_segment(value)) + "?" + query
        probe(method, base + route, target, {"Content-Type": "application/json"}, body)

    _explore(values, budget(120, 1200), one)
    probe.assert_clean()
